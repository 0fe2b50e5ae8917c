import BreakerCore
import BreakerServer
import BreakerStore
import Hiredis
import Logging
import RedisTestSupport

/// A breakerd server started in-process on a free port, against a real Redis, with a key prefix
/// of its own (or a shared one, for two servers acting as one fleet).
public struct TestServer: Sendable {
    public let server: BreakerServer
    public let redis: RedisClient
    public let store: BreakerStore
    public let prefix: String
    public let logger: Logger

    public var port: Int { server.port }

    /// Trips after four calls at a 50% failure rate and stays open for `openMs`.
    public static func policy(openMs: Int) -> BreakerPolicy {
        var p = BreakerPolicy()
        try! p.set("min_calls", to: "4")
        try! p.set("failure_rate", to: "0.5")
        try! p.set("open_ms", to: "\(openMs)")
        try! p.set("max_open_ms", to: "\(openMs)")
        return p
    }

    /// A policy that trips after a few calls and recovers fast, so tests run in milliseconds.
    public static let fastPolicy: BreakerPolicy = policy(openMs: 300)

    /// `logs` captures what the server logs (otherwise only critical lines are logged); `observer`
    /// sees what the server does (metrics, for the HTTP tests). The Redis deadline is long (5 s) so that
    /// a machine stalled by the parallel pass does not turn answers degraded; tests of deadlines pass
    /// their own.
    public static func start(
        prefix: String = TestRedis.uniquePrefix("srv"),
        endpoint: RedisEndpoint = TestRedis.endpoint,
        policy: BreakerPolicy = fastPolicy,
        deadlineMs: Int = 5000,
        logs: LogCapture? = nil,
        observer: (any BreakerServerObserver)? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var logger = logs?.logger ?? Logger(label: "breakerd-test")
        if logs == nil { logger.logLevel = .critical }
        let health = StoreHealth(logger: logger)
        let redis = RedisClient(
            configuration: .init(
                endpoint: endpoint, connectTimeoutMs: 10_000, deadlineMs: deadlineMs, reconnectMaxMs: 200,
                onStateChange: health.observer))
        let store = BreakerStore(
            client: redis, configuration: StoreConfiguration(keyPrefix: prefix, defaultPolicy: policy), logger: logger)
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = BreakerServer(
            configuration: configuration, store: store, health: health, logger: logger, observer: observer)
        try await server.start()
        return TestServer(server: server, redis: redis, store: store, prefix: prefix, logger: logger)
    }

    public func connect() async throws -> TestClient {
        try await TestClient.connect(port: port)
    }

    public func stop() async {
        await server.shutdown(grace: .seconds(2))
        redis.shutdown()
    }
}
