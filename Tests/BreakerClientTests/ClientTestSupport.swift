import BreakerClient
import BreakerCore
import BreakerServer
import BreakerStore
import Foundation
import Hiredis
import Logging
import RedisTestSupport
import Synchronization

/// A breakerd server in-process on a free port, against the shared test Redis, with a key prefix of
/// its own (or a shared one, for two servers acting as one fleet).
struct ClientTestServer {
    let server: BreakerServer
    let redis: RedisClient
    let prefix: String

    var port: Int { server.port }
    var address: BreakerAddress { BreakerAddress(host: "127.0.0.1", port: port) }

    /// Trips after four calls at a 50% failure rate; stays open long enough for a test to look.
    static let policy: BreakerPolicy = {
        var p = BreakerPolicy()
        try! p.set("min_calls", to: "4")
        try! p.set("failure_rate", to: "0.5")
        try! p.set("open_ms", to: "60000")
        try! p.set("max_open_ms", to: "60000")
        return p
    }()

    static func start(
        prefix: String = TestRedis.uniquePrefix("cli"),
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> ClientTestServer {
        var logger = Logger(label: "breakerd-client-test")
        logger.logLevel = .critical
        let health = StoreHealth(logger: logger)
        let redis = RedisClient(
            configuration: .init(
                endpoint: TestRedis.endpoint, deadlineMs: 500, reconnectMaxMs: 200,
                onStateChange: health.observer))
        let store = BreakerStore(
            client: redis, configuration: StoreConfiguration(keyPrefix: prefix, defaultPolicy: policy),
            logger: logger)
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = BreakerServer(
            configuration: configuration, store: store, health: health, logger: logger)
        try await server.start()
        return ClientTestServer(server: server, redis: redis, prefix: prefix)
    }

    func stop() async {
        await server.shutdown(grace: .seconds(2))
        redis.shutdown()
    }

    func client(
        _ configure: (inout BreakerClientConfiguration) -> Void = { _ in }
    ) -> BreakerClient {
        var c = BreakerClientConfiguration(addresses: [address], requestTimeout: .seconds(2))
        configure(&c)
        return BreakerClient(configuration: c)
    }
}

/// A unique breaker name per test, so tests on one server never share a breaker.
func uniqueBreaker(_ label: String) -> String {
    "\(label)-\(UUID().uuidString.prefix(8))"
}

struct DependencyError: Error, Equatable {
    var status: Int
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(
    timeout: Duration = .seconds(5), _ condition: @Sendable () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

struct ProcessResult: Sendable {
    var status: Int32
    var output: String
    var error: String
}

/// Runs an executable to its end, off the cooperative pool.
func runProcess(
    _ path: String, _ arguments: [String], environment: [String: String] = [:],
    timeoutSeconds: Double = 30
)
    async throws -> ProcessResult
{
    try await offPool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("BREAKERCTL_") { env[key] = nil }
        env.merge(environment) { _, b in b }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return ProcessResult(
            status: p.terminationStatus, output: String(decoding: output, as: UTF8.self),
            error: String(decoding: error, as: UTF8.self))
    }
}

/// The built `breakerctl` next to the test bundle (swift test builds every product).
var breakerctlPath: String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("breakerctl").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return dir.appendingPathComponent("breakerctl").path
}

/// A flag closures can share.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
