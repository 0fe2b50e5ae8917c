import NIOCore
import NIOPosix
import Synchronization

/// A Redis pub/sub subscription on a SwiftNIO connection of its own.
///
/// Its liveness comes from the socket: a closed socket or a failed write ends it, and it is made
/// again (at once, then after waits of tens of milliseconds, backing off to `reconnectMaxMs` when
/// the outage lasts) and subscribed again. Only after `idlePingMs` with nothing from Redis does it
/// send a PING, and a PING unanswered for as long again closes the socket. Messages published
/// while it was not live are lost, as with any Redis subscriber.
public final class RedisSubscriber: Sendable {
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        public var channels: [String]
        public var connectTimeoutMs: Int
        public var reconnectMinMs: Int
        public var fastReconnectMaxMs: Int
        public var fastReconnectWindowMs: Int
        public var reconnectMaxMs: Int
        /// After this long with nothing from Redis, a PING checks the connection (nil: never).
        public var idlePingMs: Int?
        /// nil means `MultiThreadedEventLoopGroup.singleton`; the subscriber uses one of its loops.
        public var eventLoopGroup: (any EventLoopGroup)?

        public init(
            endpoint: RedisEndpoint, channels: [String], connectTimeoutMs: Int = 1000, reconnectMinMs: Int = 10,
            fastReconnectMaxMs: Int = 100, fastReconnectWindowMs: Int = 10_000, reconnectMaxMs: Int = 2000,
            idlePingMs: Int? = 30_000, eventLoopGroup: (any EventLoopGroup)? = nil
        ) {
            self.endpoint = endpoint
            self.channels = channels
            self.connectTimeoutMs = max(1, connectTimeoutMs)
            self.reconnectMinMs = max(1, reconnectMinMs)
            self.fastReconnectMaxMs = max(1, fastReconnectMaxMs)
            self.fastReconnectWindowMs = max(0, fastReconnectWindowMs)
            self.reconnectMaxMs = max(1, reconnectMaxMs)
            self.idlePingMs = idlePingMs.map { max(1, $0) }
            self.eventLoopGroup = eventLoopGroup
        }
    }

    public let configuration: Configuration
    private let connection: SubscriberConnection

    /// `onMessage` gets each message's channel and payload; `onLiveChange` hears true once Redis
    /// confirmed every subscription, false when the connection is lost (or cannot be made), once
    /// per change. Both run on an event loop and must not block.
    public init(
        configuration: Configuration,
        onMessage: @escaping @Sendable (_ channel: String, _ payload: [UInt8]) -> Void,
        onLiveChange: @escaping @Sendable (_ live: Bool, _ detail: String) -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        let loop = (configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton).next()
        connection = SubscriberConnection(
            eventLoop: loop, configuration: configuration, onMessage: onMessage, onLiveChange: onLiveChange)
    }

    deinit { shutdown() }

    /// Connects and subscribes; later calls do nothing.
    public func start() { connection.start() }

    /// True while Redis has confirmed the subscriptions and the socket has not failed since.
    public var isLive: Bool { connection.live.load(ordering: .relaxed) }

    /// Closes the connection for good.
    public func shutdown() { connection.shutdown() }

    /// Connects made so far (for tests and measurements).
    var connectAttempts: Int { connection.connectAttempts.load(ordering: .relaxed) }
    /// PINGs sent so far (for tests).
    var pingsSent: Int { connection.pingsSent.load(ordering: .relaxed) }
}

/// The subscriber's socket and timers; every method runs on `eventLoop`.
final class SubscriberConnection: @unchecked Sendable {
    enum Phase: Equatable { case idle, connecting, subscribing, live, waitingToReconnect, shutDown }

    let eventLoop: any EventLoop
    private let configuration: RedisSubscriber.Configuration
    private let onMessage: @Sendable (String, [UInt8]) -> Void
    private let onLiveChange: @Sendable (Bool, String) -> Void
    let live = Atomic<Bool>(false)
    let connectAttempts = Atomic<Int>(0)
    let pingsSent = Atomic<Int>(0)

    private var phase: Phase = .idle
    private var channel: (any Channel)?
    private var channelID = 0
    private var closeReason: String?
    private var backoff: ReconnectBackoff
    private var reported: Bool?
    /// Replies still expected before the subscription is live (login replies, one per channel).
    private var awaiting: [Expect] = []
    private var heardSinceTick = false
    private var pingOutstanding = false
    private var timer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?

    enum Expect: Equatable { case auth, select, subscribe }

    init(
        eventLoop: any EventLoop, configuration: RedisSubscriber.Configuration,
        onMessage: @escaping @Sendable (String, [UInt8]) -> Void, onLiveChange: @escaping @Sendable (Bool, String) -> Void
    ) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.onMessage = onMessage
        self.onLiveChange = onLiveChange
        backoff = ReconnectBackoff(
            min: .milliseconds(Int64(configuration.reconnectMinMs)),
            fastMax: .milliseconds(Int64(configuration.fastReconnectMaxMs)),
            fastWindow: .milliseconds(Int64(configuration.fastReconnectWindowMs)),
            max: .milliseconds(Int64(configuration.reconnectMaxMs)))
    }

    func start() {
        eventLoop.execute { [self] in
            guard phase == .idle else { return }
            connect()
        }
    }

    func shutdown() {
        eventLoop.execute { [self] in
            let wasLive = phase == .live
            phase = .shutDown
            timer?.cancel()
            idleTimer?.cancel()
            channelID += 1
            channel?.close(promise: nil)
            channel = nil
            if wasLive { report(false, "the subscriber was shut down") }
        }
    }

    private var endpoint: RedisEndpoint { configuration.endpoint }

    private func connect() {
        phase = .connecting
        connectAttempts.add(1, ordering: .relaxed)
        channelID += 1
        let id = channelID
        closeReason = nil
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(.milliseconds(Int64(configuration.connectTimeoutMs)))
        let future: EventLoopFuture<any Channel>
        switch endpoint.address {
        case .tcp(let host, let port):
            if let address = try? SocketAddress(ipAddress: host, port: port) {
                future = bootstrap.connect(to: address)
            } else {
                future = bootstrap.connect(host: host, port: port)
            }
        case .unix(let path): future = bootstrap.connect(unixDomainSocketPath: path)
        }
        future.whenComplete { [self] result in
            guard id == channelID, phase == .connecting else {
                if case .success(let c) = result { c.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let error):
                lost("cannot connect to \(endpoint): \(error)")
            case .success(let channel):
                do {
                    try channel.pipeline.syncOperations.addHandler(SubscriberHandler(connection: self, channelID: id))
                } catch {
                    channel.close(promise: nil)
                    lost("\(endpoint): \(error)")
                    return
                }
                self.channel = channel
                channel.closeFuture.whenComplete { [self] _ in
                    guard id == channelID else { return }
                    lost(closeReason ?? "\(endpoint) closed the connection")
                }
                subscribe(on: channel)
            }
        }
    }

    private func subscribe(on channel: any Channel) {
        phase = .subscribing
        var buffer = channel.allocator.buffer(capacity: 128)
        awaiting = []
        if let password = endpoint.password {
            RedisCommandEncoder.write(
                (["AUTH"] + (endpoint.username.map { [$0] } ?? []) + [password]).map { Array($0.utf8) }, into: &buffer)
            awaiting.append(.auth)
        }
        if endpoint.database != 0 {
            RedisCommandEncoder.write([Array("SELECT".utf8), Array(String(endpoint.database).utf8)], into: &buffer)
            awaiting.append(.select)
        }
        RedisCommandEncoder.write([Array("SUBSCRIBE".utf8)] + configuration.channels.map { Array($0.utf8) }, into: &buffer)
        awaiting += Array(repeating: .subscribe, count: configuration.channels.count)
        write(buffer)
        // A Redis that accepts but never confirms would hold the subscriber forever.
        let id = channelID
        timer = eventLoop.scheduleTask(in: .milliseconds(Int64(configuration.connectTimeoutMs))) { [self] in
            if id == channelID, phase == .subscribing { close("\(endpoint) did not confirm the subscription in time") }
        }
    }

    private func write(_ buffer: ByteBuffer) {
        guard let channel else { return }
        let id = channelID
        // A failed write is a dead socket.
        channel.writeAndFlush(buffer).whenFailure { [self] error in
            if id == channelID { close("writing to \(endpoint) failed: \(error)") }
        }
    }

    private func close(_ reason: String) {
        if closeReason == nil { closeReason = reason }
        channel?.close(promise: nil)
    }

    fileprivate func received(_ reply: RedisReply, channelID id: Int) {
        guard id == channelID else { return }
        heardSinceTick = true
        if let expected = awaiting.first {
            if case .error(let e) = reply {
                let what: String
                switch expected {
                case .auth: what = "AUTH refused by \(endpoint)"
                case .select: what = "SELECT \(endpoint.database) refused by \(endpoint)"
                case .subscribe: what = "SUBSCRIBE refused by \(endpoint)"
                }
                close("\(what): \(e)")
                return
            }
            if expected != .subscribe || reply.elements?.first?.text == "subscribe" {
                awaiting.removeFirst()
                if awaiting.isEmpty { becameLive() }
                return
            }
        }
        guard let e = reply.elements, let kind = e.first?.text else { return }
        switch kind {
        case "message" where e.count == 3:
            if case .string(let payload) = e[2], let channel = e[1].text { onMessage(channel, payload) }
        case "pong":
            pingOutstanding = false
        default:
            break
        }
    }

    private func becameLive() {
        phase = .live
        timer?.cancel()
        timer = nil
        backoff.reset()
        live.store(true, ordering: .relaxed)
        report(true, "subscribed to \(configuration.channels.joined(separator: ", ")) on \(endpoint)")
        armIdleCheck()
    }

    /// Every `idlePingMs`: quiet since the last check → PING; a PING still unanswered → close.
    private func armIdleCheck() {
        guard let ms = configuration.idlePingMs else { return }
        heardSinceTick = false
        let id = channelID
        idleTimer = eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) { [self] in
            guard id == channelID, phase == .live else { return }
            if pingOutstanding && !heardSinceTick {
                close("\(endpoint) did not answer PING within \(ms) ms")
                return
            }
            if !heardSinceTick {
                pingOutstanding = true
                pingsSent.add(1, ordering: .relaxed)
                var buffer = ByteBuffer()
                RedisCommandEncoder.write([Array("PING".utf8)], into: &buffer)
                write(buffer)
            }
            armIdleCheck()
        }
    }

    private func lost(_ reason: String) {
        guard phase != .shutDown else { return }
        channelID += 1
        channel = nil
        timer?.cancel()
        idleTimer?.cancel()
        pingOutstanding = false
        live.store(false, ordering: .relaxed)
        report(false, reason)
        phase = .waitingToReconnect
        let id = channelID
        timer = eventLoop.scheduleTask(in: backoff.next(now: eventLoop.now)) { [self] in
            if id == channelID, phase == .waitingToReconnect { connect() }
        }
    }

    private func report(_ up: Bool, _ detail: String) {
        guard reported != up else { return }
        reported = up
        onLiveChange(up, detail)
    }
}

/// Feeds the subscriber's socket to hiredis's reader.
private final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: SubscriberConnection
    private let channelID: Int
    private var reader: HiredisReader?

    init(connection: SubscriberConnection, channelID: Int) {
        self.connection = connection
        self.channelID = channelID
    }

    func handlerAdded(context: ChannelHandlerContext) { reader = HiredisReader() }

    func handlerRemoved(context: ChannelHandlerContext) { reader = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let reader else { return }
        do throws(RedisError) {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.next() { connection.received(reply, channelID: channelID) }
        } catch {
            self.reader = nil
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
