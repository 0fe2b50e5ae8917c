import Logging
import NIOCore
import RESP

/// How long a connection may hold the server's resources, in the spirit of Redis's own limits.
struct ConnectionLimits: Sendable {
    /// The most bytes one unfinished frame may make the server buffer.
    var maxInputBufferBytes: Int
    /// Replies or messages not yet taken by the peer past this close the connection.
    var maxOutputBytes: Int
    /// Reading pauses while this many requests are read and unanswered.
    var maxPipelinedRequests: Int
    /// The most requests of one connection running at once.
    var maxInFlight: Int
    /// A frame begun and not finished within this closes the connection (0: never).
    var requestTimeout: TimeAmount
    /// A connection with nothing in flight and no subscription, silent this long, is closed (0: never).
    var idleTimeout: TimeAmount
    /// After QUIT or a protocol error: how long the input is drained after the output is shut.
    var linger: TimeAmount
    /// How much input a lingering connection may send before it is closed outright.
    var lingerMaxBytes: Int
    /// Request framing limits (inline line length, argument count, bulk length).
    var resp: RESPLimits

    init(_ c: ServerConfiguration) {
        resp = c.limits
        maxInputBufferBytes = c.maxInputBufferBytes
        maxOutputBytes = c.maxOutputBytes
        maxPipelinedRequests = c.maxPipelinedRequests
        maxInFlight = c.maxInFlightPerConnection
        requestTimeout = .milliseconds(Int64(c.requestTimeoutMs))
        idleTimeout = .seconds(Int64(c.idleTimeoutSeconds))
        linger = .milliseconds(Int64(c.lingerMs))
        lingerMaxBytes = 1 << 20
    }
}

/// Serves one client connection: decodes its bytes into requests (so it knows when a frame is
/// half-read), runs them through `ConnectionStateMachine` — concurrently where they only read the
/// session, replies always in request order — delivers its pub/sub messages, and bounds what the
/// peer can make the server hold: unfinished frames, unanswered requests, unread replies, time.
///
/// Lives on its channel's event loop; commands that need the store run as tasks on that loop and
/// their results come back to it.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Machine = ConnectionStateMachine<RESPRequest>

    private let runner: any ConnectionCommandRunner
    private let limits: ConnectionLimits
    private let logger: Logger
    private var session: ConnectionSession
    private var machine: Machine
    private let processor: NIOSingleStepByteToMessageProcessor<RESPRequestDecoder>
    /// Actions waiting to be carried out: a completion may arrive while others are being done.
    private var actions: [Machine.Action] = []
    private var performing = false

    private var context: ChannelHandlerContext?
    private var closed = false
    private var readHeld = false
    /// Set once the output side is shut after QUIT or a protocol error: input is read and dropped.
    private var lingering = false
    private var lingerBytes = 0
    /// Replies written during a read and not yet flushed (see channelReadComplete).
    private var unflushed = false
    private var inRead = false
    /// Bytes written to the channel and not yet handed to the kernel.
    private var outputBytes = 0
    /// Replies encoded and not yet handed to the channel, and how many of their bytes are counted
    /// in `outputBytes` already.
    private var batch = ByteBuffer()
    private var batchCounted = 0
    /// The last write's completion: a graceful close waits for it so the final replies reach the peer.
    private var lastWrite: EventLoopFuture<Void>?

    // The connection's clocks, on its event loop (EmbeddedEventLoop's in tests).
    private var openedAt = NIODeadline.now()
    private var lastActivity = NIODeadline.now()
    /// When the unfinished frame now buffered began; nil while no frame is half-read.
    private var partialSince: NIODeadline?
    /// Admitted into the admin reserve over the client limit: must AUTH as admin in time.
    private let reserved: Bool
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(runner: any ConnectionCommandRunner, session: ConnectionSession, limits: ConnectionLimits, reserved: Bool = false, logger: Logger) {
        self.runner = runner
        self.session = session
        self.limits = limits
        self.reserved = reserved
        self.logger = logger
        self.machine = Machine(maxInFlight: limits.maxInFlight)
        self.processor = NIOSingleStepByteToMessageProcessor(
            RESPRequestDecoder(limits: limits.resp), maximumBufferSize: limits.maxInputBufferBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        openedAt = context.eventLoop.now
        lastActivity = openedAt
        batch = context.channel.allocator.buffer(capacity: 256)
        armTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        runner.connectionEnded(session.id)
        timer?.cancel()
        self.context = nil
        closed = true
        machine.closed()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if lingering {
            lingerBytes += buffer.readableBytes
            if lingerBytes > limits.lingerMaxBytes { hardClose(context) }
            return
        }
        guard machine.isAccepting, !closed else { return }
        lastActivity = context.eventLoop.now
        inRead = true
        defer { inRead = false }
        var decoded = false
        do {
            try processor.process(buffer: buffer) { request in
                decoded = true
                enqueue(machine.received(request, scheduling: runner.scheduling(of: request, session: session)))
            }
        } catch let error as RESPProtocolError {
            enqueue(machine.protocolError(error.message))
        } catch is ByteToMessageDecoderError.PayloadTooLargeError {
            enqueue(machine.protocolError("Protocol error: request larger than \(limits.maxInputBufferBytes) bytes"))
        } catch {
            enqueue(machine.protocolError("Protocol error: \(error)"))
        }
        if processor.unprocessedBytes == 0 {
            partialSince = nil
        } else if decoded || partialSince == nil {
            partialSince = context.eventLoop.now
        }
        performActions()
        armTimer()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            flushOutput(context)
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An I/O error: nothing more can be said to this peer.
        hardClose(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if lingering {
                hardClose(context)
                return
            }
            // The peer sent everything (printf ... | nc): answer it all, then close.
            enqueue(machine.inputClosed())
            performActions()
        } else if event is ChannelShouldQuiesceEvent {
            enqueue(machine.quiesce())
            performActions()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        timer?.cancel()
        machine.closed()
        context.fireChannelInactive()
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
        if lingering { return false }
        return !machine.isAccepting || machine.outstanding >= limits.maxPipelinedRequests
            || outputBytes > limits.maxOutputBytes / 4
    }

    private func resumeReadsIfHeld(context: ChannelHandlerContext) {
        if readHeld && !shouldHoldReads {
            readHeld = false
            context.read()
        }
    }

    // MARK: Carrying out the machine's actions

    private func enqueue(_ new: [Machine.Action]) {
        actions.append(contentsOf: new)
    }

    private func performActions() {
        guard !performing, let context else { return }
        performing = true
        defer { performing = false }
        var wrote = false
        while !actions.isEmpty {
            let action = actions.removeFirst()
            if closed { continue }
            switch action {
            case .run(let id, let request, let scheduling):
                start(id: id, request: request, scheduling: scheduling, context: context)
            case .write(let result):
                for reply in result.replies { write(reply) }
                wrote = true
                if outputBytes > limits.maxOutputBytes {
                    flushOutput(context)
                    closeForLimit(.outputLimit, context: context)
                }
            case .close(let linger):
                close(context: context, linger: linger)
            }
        }
        if wrote && !closed {
            if inRead { unflushed = true } else { flushOutput(context) }
        }
        if !closed {
            resumeReadsIfHeld(context: context)
            armTimer()
        }
    }

    private func start(id: Int, request: RESPRequest, scheduling: Machine.Scheduling, context: ChannelHandlerContext) {
        if reserved && session.role != .admin && !Self.reserveMayRun(request.name) {
            // Over the client limit, only an admin's AUTH is served.
            enqueue(machine.completed(id: id, result: CommandResult(.error("ERR max number of clients reached"), close: true)))
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        runner.run(request, session: session, on: context.eventLoop) { result, updated in
            let handler = loopBound.value
            handler.finished(id: id, scheduling: scheduling, result: result, session: updated)
        }
    }

    private static func reserveMayRun(_ name: String) -> Bool {
        name == "AUTH" || name == "HELLO" || name == "PING" || name == "QUIT"
    }

    private func finished(id: Int, scheduling: Machine.Scheduling, result: CommandResult, session updated: ConnectionSession) {
        guard !closed else { return }
        // Idleness counts from the last reply as well as from the last request.
        if let context { lastActivity = context.eventLoop.now }
        var result = result
        if scheduling == .exclusive {
            if updated.channels != session.channels, let context {
                registerChannels(updated.channels, context: context)
            }
            session = updated
            if reserved && session.role != .admin && !result.close && !result.replies.isEmpty,
                case .error = result.replies[0]
            {
                // A failed AUTH in the reserve ends the connection: the slot is an admin's.
                result.close = true
            }
        }
        enqueue(machine.completed(id: id, result: result))
        performActions()
    }

    // MARK: Timers: unfinished frames, idle connections, the admin reserve

    private var nextDeadline: NIODeadline? {
        var deadline: NIODeadline?
        func consider(_ d: NIODeadline) { deadline = deadline.map { min($0, d) } ?? d }
        if limits.requestTimeout.nanoseconds > 0, let since = partialSince { consider(since + limits.requestTimeout) }
        if limits.idleTimeout.nanoseconds > 0, machine.isIdle, !session.isSubscribed {
            consider(lastActivity + limits.idleTimeout)
        }
        if reserved, session.role != .admin, limits.requestTimeout.nanoseconds > 0 {
            consider(openedAt + limits.requestTimeout)
        }
        return deadline
    }

    /// Keeps one timer at the earliest deadline; one that fires early (the deadline moved on) re-arms.
    private func armTimer() {
        guard let context, !closed, !lingering else { return }
        guard let deadline = nextDeadline else { return }
        if let scheduled = timerDeadline, scheduled <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { loopBound.value.timerFired() }
    }

    private func timerFired() {
        timerDeadline = nil
        timer = nil
        guard let context, !closed, !lingering else { return }
        let now = context.eventLoop.now
        if limits.requestTimeout.nanoseconds > 0, let since = partialSince, since + limits.requestTimeout <= now {
            closeForLimit(.partialRequest, context: context)
        } else if reserved, session.role != .admin, limits.requestTimeout.nanoseconds > 0,
            openedAt + limits.requestTimeout <= now
        {
            closeForLimit(.reserveUnauthenticated, context: context)
        } else if limits.idleTimeout.nanoseconds > 0, machine.isIdle, !session.isSubscribed,
            lastActivity + limits.idleTimeout <= now
        {
            closeForLimit(.idle, context: context)
        } else {
            armTimer()
        }
    }

    // MARK: Pub/sub

    private func registerChannels(_ channels: [String], context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        runner.subscriptionsChanged(connection: session.id, channels: channels) { channel, payload in
            eventLoop.execute { loopBound.value.deliver(channel: channel, payload: payload) }
        }
    }

    private func deliver(channel: String, payload: String) {
        guard let context, !closed, !lingering, session.channels.contains(channel) else { return }
        write(.push([.bulk("message"), .bulk(channel), .bulk(payload)]))
        flushOutput(context)
        if outputBytes > limits.maxOutputBytes { closeForLimit(.outputLimit, context: context) }
    }

    // MARK: Writing and closing

    /// Encodes a reply into the batch that the next `flushOutput` sends as one write.
    private func write(_ reply: RESPValue) {
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

    /// A limit ended the connection: say why in the log and the counters, then close at once.
    /// A peer whose frame timed out is told, in case it is a client that can read.
    private func closeForLimit(_ reason: ConnectionCloseReason, context: ChannelHandlerContext) {
        guard !closed else { return }
        runner.connectionClosed(session.id, peer: session.peer, reason: reason)
        switch reason {
        case .partialRequest:
            write(.error("ERR Protocol error: request not completed within \(limits.requestTimeout.nanoseconds / 1_000_000) ms"))
            close(context: context, linger: true)
        case .reserveUnauthenticated:
            write(.error("ERR max number of clients reached"))
            close(context: context, linger: true)
        case .idle:
            close(context: context, linger: true)
        case .outputLimit:
            // Redis's client-output-buffer-limit: a peer that does not read what it asked for is
            // dropped rather than make the server hold its replies or messages without bound.
            hardClose(context)
        }
    }

    /// Closes after the replies written so far. With `linger`, the output side is shut first and
    /// whatever the peer still sends is read and dropped until it closes, `limits.linger` passes,
    /// or it sends too much: closing a socket with unread input resets it, and the peer would lose
    /// the replies it had not read yet.
    private func close(context: ChannelHandlerContext, linger: Bool) {
        guard !closed, !lingering else { return }
        flushOutput(context)
        machine.closed()
        runner.connectionEnded(session.id)
        timer?.cancel()
        timer = nil
        let channel = context.channel
        let written = lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
        guard linger else {
            closed = true
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        lingering = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let lingerTime = limits.linger
        written.whenComplete { _ in
            let handler = loopBound.value
            guard !handler.closed, let context = handler.context else { return }
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenFailure { _ in
                // A channel that cannot half-close (or already closed) is closed outright.
                if let context = loopBound.value.context { loopBound.value.hardClose(context) }
            }
            context.close(mode: .output, promise: promise)
            context.eventLoop.scheduleTask(in: lingerTime) {
                if let context = loopBound.value.context { loopBound.value.hardClose(context) }
            }
            handler.readHeld = false
            context.read()
        }
    }

    private func hardClose(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        machine.closed()
        runner.connectionEnded(session.id)
        context.close(promise: nil)
    }
}
