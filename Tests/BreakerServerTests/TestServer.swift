import BreakerCore
import BreakerServer
import BreakerStore
import Hiredis
import Logging
import RedisTestSupport

/// A breakerd server started in-process on a free port, against a real Redis, with a key prefix
/// of its own (or a shared one, for two servers acting as one fleet).
struct TestServer {
    let server: BreakerServer
    let client: RedisClient
    let store: BreakerStore
    let prefix: String

    var port: Int { server.port }

    /// A policy that trips after a few calls and recovers fast, so tests run in milliseconds.
    static let fastPolicy: BreakerPolicy = {
        var p = BreakerPolicy()
        try! p.set("min_calls", to: "4")
        try! p.set("failure_rate", to: "0.5")
        try! p.set("open_ms", to: "300")
        try! p.set("max_open_ms", to: "300")
        return p
    }()

    static func start(
        prefix: String = TestRedis.uniquePrefix("srv"),
        endpoint: RedisEndpoint = TestRedis.endpoint,
        policy: BreakerPolicy = fastPolicy,
        deadlineMs: Int = 500,
        logs: LogCapture? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var logger = logs?.logger ?? Logger(label: "breakerd-test")
        if logs == nil { logger.logLevel = .critical }
        let health = StoreHealth(logger: logger)
        let client = RedisClient(
            configuration: .init(endpoint: endpoint, deadlineMs: deadlineMs, reconnectMaxMs: 200, onStateChange: health.observer))
        let store = BreakerStore(
            client: client, configuration: StoreConfiguration(keyPrefix: prefix, defaultPolicy: policy), logger: logger)
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = BreakerServer(configuration: configuration, store: store, health: health, logger: logger)
        try await server.start()
        return TestServer(server: server, client: client, store: store, prefix: prefix)
    }

    func connect() async throws -> TestClient {
        try await TestClient.connect(port: port)
    }

    func stop() async {
        await server.shutdown(grace: .seconds(2))
        client.shutdown()
    }
}
