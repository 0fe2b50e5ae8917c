import BreakerCore
import BreakerHTTP
import BreakerServer
import BreakerServerTestSupport
import Hiredis
import RedisTestSupport

/// A breakerd server and its HTTP endpoint, started in-process on free ports against a real Redis,
/// with a key prefix of their own and a metrics registry of their own.
struct HTTPTestServer {
    let base: TestServer
    let http: BreakerHTTPServer
    let metrics: BreakerMetrics

    var port: Int { base.port }
    var httpPort: Int { http.port }

    /// Trips after 4 calls at 50% failures and stays open long enough to be seen.
    static let fastPolicy = TestServer.policy(openMs: 20000)

    static func start(
        endpoint: RedisEndpoint = TestRedis.endpoint,
        // Generous: beside the whole parallel suite on two cores a store call can take a second,
        // and a degraded answer would change what these tests count.
        deadlineMs: Int = 5000,
        policy: BreakerPolicy = fastPolicy,
        logs: LogCapture? = nil,
        configure: (inout HTTPConfiguration) -> Void = { _ in }
    ) async throws -> HTTPTestServer {
        let metrics = BreakerMetrics(maxReplicaLabels: 2)
        let base = try await TestServer.start(
            prefix: TestRedis.uniquePrefix("http"), endpoint: endpoint, policy: policy, deadlineMs: deadlineMs, logs: logs,
            observer: metrics)
        var configuration = HTTPConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let http = BreakerHTTPServer(configuration: configuration, server: base.server, metrics: metrics, logger: base.logger)
        try await http.start()
        return HTTPTestServer(base: base, http: http, metrics: metrics)
    }

    func connect() async throws -> TestClient {
        try await base.connect()
    }

    func get(_ path: String, method: String = "GET", headers: [String] = []) async throws -> HTTPTestResponse {
        try await HTTPTestResponse.fetch(port: httpPort, path: path, method: method, headers: headers)
    }

    /// `count` acquires, each reported with `outcome`, through `client`.
    func calls(_ breaker: String, _ outcome: String, count: Int, through client: TestClient) async throws {
        for _ in 0..<count {
            let reply = try await client.commandText("ACQUIRE", breaker)
            let words = reply.split(separator: " ")
            guard words.first == "PERMIT" else { continue }
            _ = try await client.commandText("REPORT", breaker, String(words[1]), outcome)
        }
    }

    func stop() async {
        await http.shutdown()
        await base.stop()
    }
}
