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
    /// Replies written during a read and not yet flushed (see channelReadComplete).
    private var unflushed = false
    /// Bytes written to the channel and not yet handed to the kernel.
    private var outputBytes = 0
    /// Replies encoded and not yet handed to the channel, and how many of their bytes are counted
    /// in `outputBytes` already.
    private var batch = ByteBuffer()
    private var batchCounted = 0
    /// The last write's completion: a graceful close waits for it so the final replies reach the peer.
    private var lastWrite: EventLoopFuture<Void>?
    private var context: ChannelHandlerContext?
    /// Where this connection's command tasks run: its own event loop.
    private var executor: EventLoopTaskExecutor?

    init(dispatcher: CommandDispatcher, session: ConnectionSession, logger: Logger) {
        self.dispatcher = dispatcher
        self.configuration = dispatcher.configuration
        self.session = session
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        executor = EventLoopTaskExecutor.of(context.eventLoop)
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
        // Replies answered at once wait for channelReadComplete: one write for all the requests
        // of one read.
        runNext(context: context, flush: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            flushOutput(context)
        }
        context.fireChannelReadComplete()
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

    /// Runs what is pending, in order. A command the dispatcher can answer at once (batched mode's
    /// local ACQUIRE and REPORT) runs right here on the loop; the first that needs the store goes
    /// to a task, and the rest wait for it. Replies written here go out in one flush.
    private func runNext(context: ChannelHandlerContext, flush: Bool = true) {
        var wrote = false
        defer {
            if wrote {
                if flush || closed { flushOutput(context) } else { unflushed = true }
            }
        }
        while !busy, !closed {
            guard let next = pending.popFirst() else {
                if ending { close(context: context) } else { resumeReadsIfHeld(context: context) }
                return
            }
            switch next {
            case .protocolError(let message):
                write(.error("ERR \(message)"), context: context)
                flushOutput(context)
                close(context: context)
                return
            case .request(let request):
                if let result = dispatcher.executeImmediately(request, session: session) {
                    wrote = true
                    guard apply(result, context: context) else { return }
                    continue
                }
                busy = true
                let dispatcher = self.dispatcher
                let session = self.session
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                let eventLoop = context.eventLoop
                Task(executorPreference: executor) {
                    var s = session
                    let result = await dispatcher.execute(request, session: &s)
                    let updated = s
                    eventLoop.execute { loopBound.value.finish(result, session: updated) }
                }
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
        let goOn = apply(result, context: context)
        flushOutput(context)
        if goOn { runNext(context: context) }
    }

    /// Writes a command's replies (without flushing); false when the connection must not run more.
    private func apply(_ result: CommandResult, context: ChannelHandlerContext) -> Bool {
        for reply in result.replies { write(reply, context: context) }
        if result.close {
            ending = true
            accepting = false
            pending.removeAll()
        }
        if outputBytes > configuration.maxOutputBytes {
            flushOutput(context)
            dropSlowClient(context: context)
            return false
        }
        return true
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
        flushOutput(context)
        if outputBytes > configuration.maxOutputBytes { dropSlowClient(context: context) }
    }

    // MARK: Writing and closing

    /// Encodes a reply into the batch that the next `flushOutput` sends as one write.
    private func write(_ reply: RESPValue, context: ChannelHandlerContext) {
        reply.encode(into: &batch, version: session.version)
        outputBytes += batch.readableBytes - batchCounted
        batchCounted = batch.readableBytes
    }

    /// Hands the batch of replies to the channel and flushes; the bytes count against the output
    /// limit until the kernel has taken them.
    private func flushOutput(_ context: ChannelHandlerContext) {
        if batch.readableBytes > 0 {
            let size = batch.readableBytes
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in
                let handler = loopBound.value
                handler.outputBytes -= size
                if let context = handler.context, !handler.closed { handler.resumeReadsIfHeld(context: context) }
            }
            lastWrite = promise.futureResult
            context.write(wrapOutboundOut(batch), promise: promise)
            batch = context.channel.allocator.buffer(capacity: 256)
            batchCounted = 0
        }
        context.flush()
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
        // Replies still in the batch go out before the close that waits for the last write.
        if waitForWrites { flushOutput(context) }
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
