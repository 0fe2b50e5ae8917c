import NIOCore
import NIOPosix
import RESP

/// One command and the promise its reply completes.
struct RESPCommandRequest: Sendable {
    let arguments: [String]
    let promise: EventLoopPromise<RESPValue>
}

/// Encodes commands as RESP2 arrays of bulk strings and answers their promises in order: breakerd
/// answers a connection's requests in the order they came, so a FIFO of promises is all pipelining needs.
final class RESPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RESPCommandRequest
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard !closed else {
            request.promise.fail(ClientConnection.notSent)
            promise?.fail(ClientConnection.notSent)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        RESPValue.array(request.arguments.map { .bulk($0) }).encode(into: &buffer, version: .resp2)
        waiting.append(request.promise)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let promise = waiting.popFirst() else {
            // A reply nobody asked for: the stream is out of step and cannot be trusted.
            context.close(promise: nil)
            return
        }
        promise.succeed(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(
            BreakerClientError(
                .connectionClosed,
                "connection closed by \(context.channel.remoteAddress.map { "\($0)" } ?? "peer")"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(BreakerClientError(.connectionClosed, "connection failed: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: BreakerClientError) {
        closed = true
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

/// A connection to one breakerd with requests pipelined on it.
final class ClientConnection: Sendable {
    let channel: any Channel
    let address: BreakerAddress

    /// The request never reached the socket, so it is safe to send it elsewhere.
    static let notSent = BreakerClientError(
        .connectionClosed, "connection closed before the request was sent")

    private init(channel: any Channel, address: BreakerAddress) {
        self.channel = channel
        self.address = address
    }

    var isActive: Bool { channel.isActive }

    /// Connects, then AUTH and CLIENT SETNAME as configured (pipelined, answered before it returns).
    static func connect(
        to address: BreakerAddress,
        group: any EventLoopGroup,
        connectTimeout: Duration,
        deadline: NIODeadline,
        user: String?,
        password: String?,
        clientName: String?,
        handler: (@Sendable () -> any ChannelHandler)? = nil
    ) async throws -> ClientConnection {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(
                TimeAmount.nanoseconds(
                    Int64(min(connectTimeout, Duration.seconds(3600)).milliseconds) * 1_000_000)
            )
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPReplyDecoder()))
                    try channel.pipeline.syncOperations.addHandler(handler?() ?? RESPClientHandler())
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        } catch {
            throw BreakerClientError(.unreachable, "cannot connect to \(address): \(error)")
        }
        let connection = ClientConnection(channel: channel, address: address)
        if handler != nil { return connection }
        do {
            var setup: [[String]] = []
            if let password { setup.append(user.map { ["AUTH", $0, password] } ?? ["AUTH", password]) }
            if let clientName { setup.append(["CLIENT", "SETNAME", clientName]) }
            for reply in try await connection.pipeline(setup, deadline: deadline) {
                if case .error(let text) = reply { throw BreakerClientError.refused(text) }
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Sends `arguments` and waits for its reply until `deadline`. A missed deadline closes the
    /// connection: a breakerd that cannot answer in time is treated as one that is gone.
    func send(_ arguments: [String], deadline: NIODeadline) async throws -> RESPValue {
        try await pipeline([arguments], deadline: deadline).first!
    }

    /// Sends several commands in one write and returns their replies in order.
    func pipeline(_ commands: [[String]], deadline: NIODeadline) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        guard channel.isActive else { throw Self.notSent }
        let loop = channel.eventLoop
        let promises = commands.map { _ in loop.makePromise(of: RESPValue.self) }
        let all = EventLoopFuture.whenAllSucceed(promises.map(\.futureResult), on: loop)
        let channel = self.channel
        let address = self.address
        let timer = loop.scheduleTask(deadline: deadline) {
            let error = BreakerClientError(.timeout, "\(address) did not answer in time")
            for p in promises { p.fail(error) }
            channel.close(promise: nil)
        }
        all.whenComplete { _ in timer.cancel() }
        for (command, promise) in zip(commands, promises) {
            channel.write(RESPCommandRequest(arguments: command, promise: promise), promise: nil)
        }
        channel.flush()
        return try await withTaskCancellationHandler {
            try await all.get()
        } onCancel: {
            for p in promises { p.fail(CancellationError()) }
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}
