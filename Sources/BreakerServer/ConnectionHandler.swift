import Logging
import NIOCore
import RESP

/// Serves one client connection behind `RESPRequestDecoder`: runs its commands one at a time and
/// writes every reply in request order, delivers its pub/sub messages, and bounds what the peer can
/// make the server hold (queued requests, unread replies).
///
/// Lives on its channel's event loop; a command runs as a task off the loop and its result comes
/// back to the loop, so store calls never block I/O and one connection never waits for another.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPRequest
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What waits to be run, in arrival order: a request, or the protocol error that ends the connection.
    private enum Pending {
        case request(RESPRequest)
        case protocolError(String)
    }

    private let dispatcher: CommandDispatcher
    private let configuration: ServerConfiguration
    private let logger: Logger
    private var session: ConnectionSession
    private var pending = CircularBuffer<Pending>()
    private var busy = false
    /// Set once the connection must end: after QUIT, a protocol error, the peer's EOF or shutdown,
    /// the queued requests are still answered, then the channel closes.
    private var ending = false
    /// False after QUIT or a protocol error: later requests, even already read, are not run.
    private var accepting = true
    private var closed = false
    private var readHeld = false
    /// Bytes written to the channel and not yet handed to the kernel.
    private var outputBytes = 0
    /// The last write's completion: a graceful close waits for it so the final replies reach the peer.
    private var lastWrite: EventLoopFuture<Void>?
    private var context: ChannelHandlerContext?

    init(dispatcher: CommandDispatcher, session: ConnectionSession, logger: Logger) {
        self.dispatcher = dispatcher
        self.configuration = dispatcher.configuration
        self.session = session
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        dispatcher.fanout.remove(connection: session.id)
        self.context = nil
        closed = true
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // While shutting down, requests already read are still answered; no more are read.
        guard accepting else { return }
        pending.append(.request(unwrapInboundIn(data)))
        runNext(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let message: String
        if let e = error as? RESPProtocolError {
            message = e.message
        } else if error is ByteToMessageDecoderError.PayloadTooLargeError {
            message = "Protocol error: request larger than \(configuration.maxInputBufferBytes) bytes"
        } else {
            // An I/O error: nothing more can be said to this peer.
            close(context: context)
            return
        }
        guard accepting else { return }
        // Requests decoded before the bad frame are answered first, then the error, then the close.
        pending.append(.protocolError(message))
        ending = true
        accepting = false
        runNext(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The peer sent everything (printf ... | nc): answer it all, then close.
            ending = true
            runNext(context: context)
        } else if event is ChannelShouldQuiesceEvent {
            ending = true
            runNext(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if shouldHoldReads {
            readHeld = true
        } else {
            context.read()
        }
    }

    private var shouldHoldReads: Bool {
        ending || pending.count >= configuration.maxPipelinedRequests || outputBytes > configuration.maxOutputBytes / 4
    }

    private func resumeReadsIfHeld(context: ChannelHandlerContext) {
        if readHeld && !shouldHoldReads {
            readHeld = false
            context.read()
        }
    }

    // MARK: Running commands

    private func runNext(context: ChannelHandlerContext) {
        guard !busy, !closed else { return }
        guard let next = pending.popFirst() else {
            if ending { close(context: context) } else { resumeReadsIfHeld(context: context) }
            return
        }
        switch next {
        case .protocolError(let message):
            write(.error("ERR \(message)"), context: context)
            context.flush()
            close(context: context)
        case .request(let request):
            busy = true
            let dispatcher = self.dispatcher
            let session = self.session
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            Task {
                var s = session
                let result = await dispatcher.execute(request, session: &s)
                let updated = s
                eventLoop.execute { loopBound.value.finish(result, session: updated) }
            }
        }
    }

    private func finish(_ result: CommandResult, session updated: ConnectionSession) {
        busy = false
        guard let context, !closed else { return }
        if updated.channels != session.channels {
            registerChannels(updated.channels, context: context)
        }
        session = updated
        for reply in result.replies { write(reply, context: context) }
        context.flush()
        if result.close {
            ending = true
            accepting = false
            pending.removeAll()
        }
        if outputBytes > configuration.maxOutputBytes {
            dropSlowClient(context: context)
            return
        }
        runNext(context: context)
    }

    // MARK: Pub/sub

    private func registerChannels(_ channels: [String], context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        dispatcher.fanout.update(connection: session.id, channels: channels) { channel, payload in
            eventLoop.execute { loopBound.value.deliver(channel: channel, payload: payload) }
        }
    }

    private func deliver(channel: String, payload: String) {
        guard let context, !closed, session.channels.contains(channel) else { return }
        write(.push([.bulk("message"), .bulk(channel), .bulk(payload)]), context: context)
        context.flush()
        if outputBytes > configuration.maxOutputBytes { dropSlowClient(context: context) }
    }

    // MARK: Writing and closing

    private func write(_ reply: RESPValue, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        reply.encode(into: &buffer, version: session.version)
        let size = buffer.readableBytes
        outputBytes += size
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in
            let handler = loopBound.value
            handler.outputBytes -= size
            if let context = handler.context, !handler.closed { handler.resumeReadsIfHeld(context: context) }
        }
        lastWrite = promise.futureResult
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    /// Redis's client-output-buffer-limit: a peer that does not read what it asked for is dropped
    /// rather than make the server hold its replies or messages without bound.
    private func dropSlowClient(context: ChannelHandlerContext) {
        logger.warning(
            "closing a client over its output limit",
            metadata: ["peer": "\(session.peer)", "bytes": "\(outputBytes)", "subscribed": "\(session.isSubscribed)"])
        close(context: context, waitForWrites: false)
    }

    private func close(context: ChannelHandlerContext, waitForWrites: Bool = true) {
        guard !closed else { return }
        closed = true
        pending.removeAll()
        dispatcher.fanout.remove(connection: session.id)
        if waitForWrites, let lastWrite {
            let channel = context.channel
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
