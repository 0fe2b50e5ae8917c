import NIOCore
import NIOPosix
import Synchronization

/// An async Redis client with one connection per event loop of a SwiftNIO group, hiredis formatting
/// every request and parsing every reply, and no thread, lock wait or polling of its own.
///
/// A request made on one of the group's event loops goes out on that loop's connection, in the same
/// write as every other request queued on that loop during the same tick; from anywhere else the
/// connections take turns. Every request has a deadline, a task on its loop: when Redis cannot
/// answer in time the caller gets `.timeout` then, and a reply arriving later is read and dropped,
/// so requests and replies stay matched. A lost connection is made again at once, then after waits
/// of tens of milliseconds, backing off to `reconnectMaxMs` only when the outage lasts.
///
/// The client is also the store's own breaker: after `tripAfterMisses` deadline misses in a row on a
/// connection, or a lost connection, requests there fail at once with `.unavailable` while one probe
/// at a time asks Redis whether it answers again. `onStateChange` hears one "down" when the first
/// connection goes down and one "up" when all of them are up again.
public final class RedisClient: Sendable {
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        /// Not used any more: the client keeps one connection per event loop of `eventLoopGroup`.
        public var connections: Int
        public var connectTimeoutMs: Int
        /// A request not answered within this many milliseconds fails with `.timeout`.
        public var deadlineMs: Int
        /// The most requests one write carries before it is flushed.
        public var maxBatch: Int
        /// Reconnect waits after the immediate first attempt: the first wait, doubled on every
        /// failure up to `fastReconnectMaxMs` during the first `fastReconnectWindowMs` of an outage,
        /// then up to the maximum.
        public var reconnectMinMs: Int
        public var reconnectMaxMs: Int
        /// Told when the client as a whole goes down (false: a connection lost, or missing
        /// deadlines) or is up again (true: every connection answers); once per change.
        /// It runs on an event loop: it must not block nor call back into the client.
        public var onStateChange: (@Sendable (_ up: Bool, _ detail: String) -> Void)?
        /// The loops whose connections the client keeps; nil means `MultiThreadedEventLoopGroup.singleton`.
        public var eventLoopGroup: (any EventLoopGroup)?
        /// After this many deadline misses in a row a connection counts as down (0: never).
        public var tripAfterMisses: Int
        /// While a connection is down on a live socket: the wait between two probes that got an error.
        public var probeIntervalMs: Int
        /// A probe unanswered this long closes the connection, which is then made again: a socket
        /// whose peer vanished without a reset would otherwise hold the client down for good.
        /// Longer than the pauses Redis recovers from by itself, so those are not interrupted.
        public var probeTimeoutMs: Int
        public var fastReconnectMaxMs: Int
        public var fastReconnectWindowMs: Int

        public init(
            endpoint: RedisEndpoint,
            connections: Int = 2,
            connectTimeoutMs: Int = 1000,
            deadlineMs: Int = 500,
            maxBatch: Int = 256,
            reconnectMinMs: Int = 10,
            reconnectMaxMs: Int = 2000,
            onStateChange: (@Sendable (Bool, String) -> Void)? = nil,
            eventLoopGroup: (any EventLoopGroup)? = nil,
            tripAfterMisses: Int = 3,
            probeIntervalMs: Int = 20,
            probeTimeoutMs: Int = 5000,
            fastReconnectMaxMs: Int = 100,
            fastReconnectWindowMs: Int = 10_000
        ) {
            self.endpoint = endpoint
            self.connections = max(1, connections)
            self.connectTimeoutMs = max(1, connectTimeoutMs)
            self.deadlineMs = max(1, deadlineMs)
            self.maxBatch = max(1, maxBatch)
            self.reconnectMinMs = max(1, reconnectMinMs)
            self.reconnectMaxMs = max(1, reconnectMaxMs)
            self.onStateChange = onStateChange
            self.eventLoopGroup = eventLoopGroup
            self.tripAfterMisses = max(0, tripAfterMisses)
            self.probeIntervalMs = max(1, probeIntervalMs)
            self.probeTimeoutMs = max(1, probeTimeoutMs)
            self.fastReconnectMaxMs = max(1, fastReconnectMaxMs)
            self.fastReconnectWindowMs = max(0, fastReconnectWindowMs)
        }
    }

    public let configuration: Configuration
    private let connections: [RedisLoopConnection]
    private let nextConnection = Atomic<Int>(0)
    private let health: ClientHealth
    private let isShutDown = Atomic<Bool>(false)

    public convenience init(configuration: Configuration) {
        self.init(configuration: configuration, connector: Self.connector(for: configuration))
    }

    /// With a connector of the caller's (tests hand in `EmbeddedChannel`s).
    init(configuration: Configuration, connector: @escaping RedisConnector) {
        self.configuration = configuration
        let group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        let loops = Array(group.makeIterator())
        let health = ClientHealth(count: loops.count, onStateChange: configuration.onStateChange)
        self.health = health
        let settings = RedisConnectionStateMachine<PendingRequest>.Settings(
            endpoint: configuration.endpoint,
            tripAfterMisses: configuration.tripAfterMisses,
            probeInterval: .milliseconds(Int64(configuration.probeIntervalMs)),
            probeTimeout: .milliseconds(Int64(configuration.probeTimeoutMs)),
            reconnectMin: .milliseconds(Int64(configuration.reconnectMinMs)),
            fastReconnectMax: .milliseconds(Int64(configuration.fastReconnectMaxMs)),
            fastReconnectWindow: .milliseconds(Int64(configuration.fastReconnectWindowMs)),
            reconnectMax: .milliseconds(Int64(configuration.reconnectMaxMs)),
            maxBatch: configuration.maxBatch)
        connections = loops.enumerated().map { index, loop in
            RedisLoopConnection(
                eventLoop: loop, settings: settings, deadline: .milliseconds(Int64(configuration.deadlineMs)),
                connectTimeout: .milliseconds(Int64(configuration.connectTimeoutMs)), connector: connector
            ) { change in health.update(index, change) }
        }
        for c in connections { c.start() }
    }

    deinit { shutdown() }

    /// True while every connection is up (what `onStateChange` last said, or false before it spoke).
    public var isConnected: Bool { health.isUp }

    /// Connects tried and probes written so far, over every connection (for tests and measurements).
    var connectAttempts: Int { connections.reduce(0) { $0 + $1.connectAttempts.load(ordering: .relaxed) } }
    var probesSent: Int { connections.reduce(0) { $0 + $1.probesSent.load(ordering: .relaxed) } }

    /// Sends one command and waits for its reply (an error reply is a reply, not a throw).
    public func send(_ command: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await send(pipeline: [command])[0]
    }

    /// Sends one command of text arguments.
    public func send(_ command: [String]) async throws(RedisError) -> RedisReply {
        try await send(pipeline: [command.map { Array($0.utf8) }])[0]
    }

    /// Sends several commands back to back on one connection and returns their replies in order.
    public func send(pipeline commands: [[[UInt8]]]) async throws(RedisError) -> [RedisReply] {
        if commands.isEmpty { return [] }
        if isShutDown.load(ordering: .relaxed) { throw RedisError(.unavailable, "the Redis client was shut down") }
        let connection = connectionForCaller()
        let result: Result<[RedisReply], RedisError> = await withCheckedContinuation { continuation in
            connection.submit(PendingRequest(commands: commands) { continuation.resume(returning: $0) })
        }
        return try result.get()
    }

    /// Closes every connection; requests in flight fail with `.unavailable`.
    public func shutdown() {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        for c in connections { c.shutdown() }
    }

    /// The current event loop's connection, or the next one in turn off the group's loops.
    func connectionForCaller() -> RedisLoopConnection {
        if connections.count == 1 { return connections[0] }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop {
            for c in connections where c.eventLoop === current { return c }
        }
        let i = nextConnection.add(1, ordering: .relaxed).newValue
        return connections[Int(UInt(bitPattern: i) % UInt(connections.count))]
    }

    private static func connector(for configuration: Configuration) -> RedisConnector {
        let endpoint = configuration.endpoint
        let timeout = TimeAmount.milliseconds(Int64(configuration.connectTimeoutMs))
        return { loop in
            let bootstrap = ClientBootstrap(group: loop).connectTimeout(timeout)
            switch endpoint.address {
            case .tcp(let host, let port):
                // An address given as digits needs no resolver: NIO's would hop through a dispatch
                // queue and wait for an AAAA answer first.
                if let address = try? SocketAddress(ipAddress: host, port: port) {
                    return bootstrap.connect(to: address)
                }
                return bootstrap.connect(host: host, port: port)
            case .unix(let path):
                return bootstrap.connect(unixDomainSocketPath: path)
            }
        }
    }
}

/// The client's health from its connections': down as soon as one is down, up once all are up,
/// told to the owner once per change.
final class ClientHealth: Sendable {
    private struct State {
        var connections: [Bool?]
        var reported: Bool?
    }

    private let state: Mutex<State>
    private let onStateChange: (@Sendable (Bool, String) -> Void)?

    init(count: Int, onStateChange: (@Sendable (Bool, String) -> Void)?) {
        state = Mutex(State(connections: Array(repeating: nil, count: count), reported: nil))
        self.onStateChange = onStateChange
    }

    var isUp: Bool { state.withLock { $0.reported == true } }

    func update(_ index: Int, _ change: RedisConnectionStateMachine<PendingRequest>.Health) {
        state.withLock { s in
            let detail: String
            switch change {
            case .up(let d):
                s.connections[index] = true
                detail = d
            case .down(let d):
                s.connections[index] = false
                detail = d
            }
            let now: Bool? = s.connections.contains(false) ? false : (s.connections.allSatisfy { $0 == true } ? true : nil)
            guard let now, now != s.reported else { return }
            s.reported = now
            // Told under the lock so two loops' changes reach the owner in the order they were made.
            onStateChange?(now, detail)
        }
    }
}
