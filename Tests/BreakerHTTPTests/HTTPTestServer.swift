import BreakerCore
import BreakerHTTP
import BreakerServer
import BreakerStore
import Hiredis
import Logging
import RedisTestSupport

/// A breakerd server and its HTTP endpoint, started in-process on free ports against a real Redis,
/// with a key prefix of their own and a metrics registry of their own.
struct HTTPTestServer {
    let server: BreakerServer
    let http: BreakerHTTPServer
    let metrics: BreakerMetrics
    let client: RedisClient
    let store: BreakerStore

    var port: Int { server.port }
    var httpPort: Int { http.port }

    /// Trips after 4 calls at 50% failures and stays open long enough to be seen.
    static let fastPolicy: BreakerPolicy = {
        var p = BreakerPolicy()
        try! p.set("min_calls", to: "4")
        try! p.set("failure_rate", to: "0.5")
        try! p.set("open_ms", to: "20000")
        try! p.set("max_open_ms", to: "20000")
        return p
    }()

    static func start(
        endpoint: RedisEndpoint = TestRedis.endpoint,
        deadlineMs: Int = 500,
        configure: (inout HTTPConfiguration) -> Void = { _ in }
    ) async throws -> HTTPTestServer {
        var logger = Logger(label: "breakerd-http-test")
        logger.logLevel = .critical
        let health = StoreHealth(logger: logger)
        let client = RedisClient(
            configuration: .init(endpoint: endpoint, deadlineMs: deadlineMs, reconnectMaxMs: 200, onStateChange: health.observer))
        let store = BreakerStore(
            client: client,
            configuration: StoreConfiguration(keyPrefix: TestRedis.uniquePrefix("http"), defaultPolicy: fastPolicy),
            logger: logger)
        let metrics = BreakerMetrics(maxReplicaLabels: 2)
        let server = BreakerServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0), store: store, health: health, logger: logger,
            observer: metrics)
        try await server.start()
        var configuration = HTTPConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let http = BreakerHTTPServer(configuration: configuration, server: server, metrics: metrics, logger: logger)
        try await http.start()
        return HTTPTestServer(server: server, http: http, metrics: metrics, client: client, store: store)
    }

    func connect() async throws -> RESPTestClient {
        try await RESPTestClient.connect(port: port)
    }

    func get(_ path: String, method: String = "GET") async throws -> HTTPTestResponse {
        try await HTTPTestResponse.fetch(port: httpPort, path: path, method: method)
    }

    /// `count` acquires, each reported with `outcome`, through `client`.
    func calls(_ breaker: String, _ outcome: String, count: Int, through client: RESPTestClient) async throws {
        for _ in 0..<count {
            let reply = try await client.command("ACQUIRE", breaker)
            let words = reply.split(separator: " ")
            guard words.first == "PERMIT" else { continue }
            _ = try await client.command("REPORT", breaker, String(words[1]), outcome)
        }
    }

    func stop() async {
        await http.shutdown()
        await server.shutdown(grace: .seconds(2))
        client.shutdown()
    }
}
