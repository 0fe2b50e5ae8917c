import BreakerClient
import BreakerCore
import BreakerServer
import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Synchronization

extension TestServer {
    /// Trips after four calls at a 50% failure rate; stays open long enough for a test to look.
    static let clientPolicy = TestServer.policy(openMs: 60000)

    /// A server for client tests: a key prefix of its own (or a shared one, for two servers acting
    /// as one fleet) and `clientPolicy`.
    static func startForClients(
        prefix: String = TestRedis.uniquePrefix("cli"),
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        try await start(prefix: prefix, policy: clientPolicy, configure: configure)
    }

    var address: BreakerAddress { BreakerAddress(host: "127.0.0.1", port: port) }

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

/// Runs the built `breakerctl` to its end, without the test's own `BREAKERCTL_` variables.
func runBreakerctl(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    try await runProcess(breakerctlPath, arguments, environment: environment, unsettingPrefixes: ["BREAKERCTL_"])
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
