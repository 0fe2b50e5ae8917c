import NIOCore
import NIOPosix
import Synchronization

/// A request waiting for its replies.
/// Made on the caller's thread and handed to the connection's loop once; touched only there after.
final class PendingRequest: @unchecked Sendable {
    let commands: [[[UInt8]]]
    private let completion: (Result<[RedisReply], RedisError>) -> Void
    var deadline: NIOScheduledCallback?

    init(commands: [[[UInt8]]], completion: @escaping (Result<[RedisReply], RedisError>) -> Void) {
        self.commands = commands
        self.completion = completion
    }

    /// Hands the caller its result; called exactly once, by the connection's loop.
    func finish(_ result: Result<[RedisReply], RedisError>) {
        deadline?.cancel()
        deadline = nil
        completion(result)
    }
}

/// Makes the socket of a connection, on the loop given (a real `ClientBootstrap` connect, or an
/// `EmbeddedChannel` in tests).
typealias RedisConnector = @Sendable (any EventLoop) -> EventLoopFuture<any Channel>

/// One Redis connection of one event loop: it runs the state machine's actions. Every method runs
/// on `eventLoop` (callers on other threads hop with `execute`), so it needs no lock.
final class RedisLoopConnection: @unchecked Sendable {
    typealias Machine = RedisConnectionStateMachine<PendingRequest>

    let eventLoop: any EventLoop
    private var machine: Machine
    private let deadline: TimeAmount
    private let connector: RedisConnector
    private let onHealth: @Sendable (Machine.Health) -> Void
    private var channel: (any Channel)?
    /// Which socket the handler events are about: a late event of a closed socket is ignored.
    private var channelID = 0
    private var closeReason: RedisError?
    private var outbound = ByteBuffer()
    private var nextRequestID: UInt64 = 0
    private var reconnectTimer: Scheduled<Void>?
    private var probeTimer: Scheduled<Void>?
    private var loginTimer: Scheduled<Void>?
    private var probeStallTimer: Scheduled<Void>?
    private let connectTimeout: TimeAmount
    /// Counted for tests and measurements: connects tried, probes written.
    let connectAttempts = Atomic<Int>(0)
    let probesSent = Atomic<Int>(0)

    init(
        eventLoop: any EventLoop, settings: Machine.Settings, deadline: TimeAmount, connectTimeout: TimeAmount,
        connector: @escaping RedisConnector, onHealth: @escaping @Sendable (Machine.Health) -> Void
    ) {
        self.connectTimeout = connectTimeout
        self.eventLoop = eventLoop
        self.machine = Machine(settings: settings)
        self.deadline = deadline
        self.connector = connector
        self.onHealth = onHealth
    }

    /// Makes the first connection (call once, on any thread).
    func start() {
        run { $0.connect() }
    }

    /// Queues `request` on this connection (from any thread; on the loop it runs at once).
    func submit(_ request: PendingRequest) {
        if eventLoop.inEventLoop {
            submitOnLoop(request)
        } else {
            run { $0.submitOnLoop(request) }
        }
    }

    func shutdown() {
        run { $0.shutdownOnLoop() }
    }

    private func run(_ body: @escaping @Sendable (RedisLoopConnection) -> Void) {
        if eventLoop.inEventLoop {
            body(self)
        } else {
            eventLoop.execute { body(self) }
        }
    }

    // MARK: Requests

    private func submitOnLoop(_ request: PendingRequest) {
        nextRequestID &+= 1
        let id = nextRequestID
        switch machine.send(id: id, waiter: request, commands: request.commands.count) {
        case .write(let flush):
            encode(request.commands)
            armDeadline(request, id: id)
            self.flush(flush)
        case .wait:
            armDeadline(request, id: id)
        case .fail(let error):
            request.finish(.failure(error))
        }
    }

    private func armDeadline(_ request: PendingRequest, id: UInt64) {
        request.deadline = try? eventLoop.scheduleCallback(in: deadline, handler: DeadlineHandler(connection: self, id: id))
    }

    fileprivate func deadlineFired(id: UInt64) {
        switch machine.deadlineFired(id: id) {
        case .none:
            break
        case .fail(let request, let error, let probe, let health):
            // The callback has run: nothing to cancel.
            request.deadline = nil
            request.finish(.failure(error))
            if let health { onHealth(health) }
            if probe { writeProbe() }
        }
    }

    private func encode(_ commands: [[[UInt8]]]) {
        for command in commands { RedisCommandEncoder.write(command, into: &outbound) }
    }

    private func flush(_ flush: Machine.Flush) {
        switch flush {
        case .alreadyScheduled:
            break
        case .scheduleTick:
            // Everything queued on this loop before the task runs goes out in the same write.
            eventLoop.execute { self.flushNow() }
        case .now:
            flushNow()
        }
    }

    private func flushNow() {
        machine.flushed()
        guard outbound.readableBytes > 0 else { return }
        if let channel {
            channel.writeAndFlush(outbound, promise: nil)
        }
        outbound.clear()
    }

    private func writeProbe() {
        probesSent.add(1, ordering: .relaxed)
        probeStallTimer?.cancel()
        let id = channelID
        probeStallTimer = eventLoop.scheduleTask(in: machine.settings.probeTimeout) { [self] in
            probeStallTimer = nil
            if id == channelID, let error = machine.probeTimedOut() { closeChannel(error) }
        }
        RedisCommandEncoder.write([Array("PING".utf8)], into: &outbound)
        flushNow()
    }

    // MARK: Replies

    fileprivate func received(_ reply: RedisReply, channelID: Int) {
        guard channelID == self.channelID else { return }
        switch machine.replyReceived(reply) {
        case .none:
            break
        case .succeed(let request, let replies):
            request.finish(.success(replies))
        case .ready(let requests, let health):
            loginTimer?.cancel()
            loginTimer = nil
            for r in requests { encode(r.commands) }
            flushNow()
            if let health { onHealth(health) }
        case .recovered(let health):
            probeStallTimer?.cancel()
            probeStallTimer = nil
            onHealth(health)
        case .probeAgain(let after):
            probeStallTimer?.cancel()
            probeStallTimer = nil
            probeTimer = eventLoop.scheduleTask(in: after) { [self] in
                probeTimer = nil
                if machine.probeTimerFired() { writeProbe() }
            }
        case .close(let error):
            closeChannel(error)
        }
    }

    // MARK: The socket

    private func connect() {
        reconnectTimer = nil
        connectAttempts.add(1, ordering: .relaxed)
        channelID += 1
        let id = channelID
        closeReason = nil
        connector(eventLoop).whenComplete { [self] result in
            eventLoop.assertInEventLoop()
            guard id == channelID else { return }
            switch result {
            case .success(let channel):
                if machine.phase == .shutDown {
                    channel.close(promise: nil)
                    return
                }
                do {
                    try channel.pipeline.syncOperations.addHandler(RedisReplyHandler(connection: self, channelID: id))
                } catch {
                    channel.close(promise: nil)
                    lost(RedisError(.connect, "\(machine.settings.endpoint): \(error)"))
                    return
                }
                self.channel = channel
                // The close future fires however the socket ends, even before the handler saw it active.
                channel.closeFuture.whenComplete { [self] _ in channelClosed(channelID: id) }
                // A Redis that accepts but never answers the login would hold the connection forever.
                loginTimer = eventLoop.scheduleTask(in: connectTimeout) { [self] in
                    loginTimer = nil
                    if id == channelID, machine.phase == .loggingIn {
                        closeChannel(RedisError(.handshake, "\(machine.settings.endpoint) did not answer the login within \(connectTimeout.nanoseconds / 1_000_000) ms"))
                    }
                }
                for command in machine.connected() { RedisCommandEncoder.write(command.map { Array($0.utf8) }, into: &outbound) }
                flushNow()
            case .failure(let error):
                lost(RedisError(.connect, "cannot connect to \(machine.settings.endpoint): \(error)"))
            }
        }
    }

    private func closeChannel(_ reason: RedisError) {
        if closeReason == nil { closeReason = reason }
        channel?.close(promise: nil)
    }

    fileprivate func channelError(_ error: any Error, channelID: Int) {
        guard channelID == self.channelID else { return }
        if let error = error as? RedisError {
            closeChannel(error)
        } else {
            closeChannel(RedisError(.io, "\(machine.settings.endpoint): \(error)"))
        }
    }

    fileprivate func channelClosed(channelID: Int) {
        guard channelID == self.channelID else { return }
        channel = nil
        lost(closeReason ?? RedisError(.eof, "\(machine.settings.endpoint) closed the connection"))
    }

    private func lost(_ reason: RedisError) {
        // A new socket gets a new id, so events of this one are ignored from now on.
        channelID += 1
        channel = nil
        outbound.clear()
        probeTimer?.cancel()
        probeTimer = nil
        loginTimer?.cancel()
        loginTimer = nil
        probeStallTimer?.cancel()
        probeStallTimer = nil
        switch machine.connectionLost(reason, now: eventLoop.now) {
        case .none:
            break
        case .reconnect(let after, let requests, let error, let health):
            for r in requests { r.finish(.failure(error)) }
            if let health { onHealth(health) }
            reconnectTimer = eventLoop.scheduleTask(in: after) { [self] in
                if machine.reconnectTimerFired() { connect() }
            }
        }
    }

    private func shutdownOnLoop() {
        let requests = machine.shutdown()
        reconnectTimer?.cancel()
        reconnectTimer = nil
        probeTimer?.cancel()
        probeTimer = nil
        loginTimer?.cancel()
        loginTimer = nil
        probeStallTimer?.cancel()
        probeStallTimer = nil
        channelID += 1
        channel?.close(promise: nil)
        channel = nil
        let error = RedisError(.unavailable, "the Redis client was shut down")
        for r in requests { r.finish(.failure(error)) }
    }
}

/// Fails one request at its deadline.
private struct DeadlineHandler: NIOScheduledCallbackHandler, @unchecked Sendable {
    // Touched only on the connection's loop, where the callback runs.
    let connection: RedisLoopConnection
    let id: UInt64

    func handleScheduledCallback(eventLoop: some EventLoop) {
        connection.deadlineFired(id: id)
    }
}

/// Feeds the socket's bytes to hiredis's reader and hands each whole reply to the connection.
final class RedisReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: RedisLoopConnection
    private let channelID: Int
    private var reader: HiredisReader?

    init(connection: RedisLoopConnection, channelID: Int) {
        self.connection = connection
        self.channelID = channelID
    }

    func handlerAdded(context: ChannelHandlerContext) {
        reader = HiredisReader()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Frees hiredis's buffer now rather than whenever the handler is released.
        reader = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let reader else { return }
        do throws(RedisError) {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.next() {
                connection.received(reply, channelID: channelID)
            }
        } catch {
            self.reader = nil
            connection.channelError(error, channelID: channelID)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.channelError(error, channelID: channelID)
    }
}
