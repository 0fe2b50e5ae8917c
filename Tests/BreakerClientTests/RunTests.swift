import BreakerCore
import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Synchronization
import Testing

@testable import BreakerClient

/// `run` against a real breakerd and Redis: permit, deny with and without fallback, classification.
@Suite struct RunTests {
    @Test func permittedCallReturnsItsResultAndReportsSuccessWithLatency() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("permit")
        let value = try await client.run(name) { 42 }
        #expect(value == 42)
        await client.flushReports()
        let state = try await client.state(name)
        #expect(state.state == .closed)
        #expect(state.calls == 1)
        #expect(state.failures == 0)
        await client.shutdown()
        await t.stop()
    }

    @Test func denyReturnsTheFallbackWithoutRunningTheOperation() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("fallback")
        try await client.force(name, mode: .forcedOpen, reason: "test")
        let ran = Flag()
        let value = try await client.run(name, fallback: { "cached" }) {
            ran.set()
            return "live"
        }
        #expect(value == "cached")
        #expect(!ran.isSet)
        await client.shutdown()
        await t.stop()
    }

    @Test func denyWithoutFallbackThrowsTheStateAndRetryAfter() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("nofallback")
        try await client.force(name, mode: .forcedOpen, ttl: .seconds(30))
        do {
            _ = try await client.run(name) { 1 }
            Issue.record("a forced-open breaker permitted a call")
        } catch let error as BreakerOpenError {
            #expect(error.breaker == name)
            #expect(error.state == .open)
            #expect(error.retryAfter > .seconds(20) && error.retryAfter <= .seconds(30))
        }
        await client.shutdown()
        await t.stop()
    }

    @Test func errorsAreFailuresUnlessIgnored() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("classify")
        // A 4xx is the caller's own fault: ignored, counts nothing; the error still reaches the caller.
        await #expect(throws: DependencyError(status: 404)) {
            try await client.run(name, ignore: { ($0 as? DependencyError)?.status ?? 500 < 500 }) {
                throw DependencyError(status: 404)
            }
        }
        await client.flushReports()
        var state = try await client.state(name)
        #expect(state.calls == 0)
        // A 5xx counts as a failure.
        await #expect(throws: DependencyError(status: 503)) {
            try await client.run(name, ignore: { ($0 as? DependencyError)?.status ?? 500 < 500 }) {
                throw DependencyError(status: 503)
            }
        }
        // A result the classifier calls a failure is returned and counted as one.
        let body = try await client.run(name, isFailure: { $0.isEmpty }) { "" }
        #expect(body == "")
        await client.flushReports()
        state = try await client.state(name)
        #expect(state.calls == 2)
        #expect(state.failures == 2)
        await client.shutdown()
        await t.stop()
    }

    @Test func anOperationPastItsTimeoutIsCancelledAndCountsAsAFailure() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("timeout")
        let started = ContinuousClock.now
        await #expect(throws: BreakerOperationTimeout.self) {
            try await client.run(name, timeout: .milliseconds(100)) {
                try await Task.sleep(for: .seconds(10))
                return 1
            }
        }
        #expect(started.duration(to: .now) < .seconds(3))
        await client.flushReports()
        let state = try await client.state(name)
        #expect(state.calls == 1)
        #expect(state.failures == 1)
        await client.shutdown()
        await t.stop()
    }

    @Test func failuresTripTheBreakerAndLaterCallsGetTheFallback() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("trip")
        for _ in 0..<4 {
            _ = try? await client.run(name) { () async throws -> Int in throw DependencyError(status: 503)
            }
        }
        await client.flushReports()
        #expect(try await client.state(name).state == .open)
        #expect(try await client.run(name, fallback: { -1 }) { 1 } == -1)
        await client.shutdown()
        await t.stop()
    }

    @Test func pipelinedRequestsOnOneConnectionAreAnsweredInOrder() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client { $0.connectionsPerAddress = 1 }
        let names = (0..<64).map { _ in uniqueBreaker("pipe") }
        let states = try await withThrowingTaskGroup(of: (String, String).self) { group in
            for name in names { group.addTask { (name, try await client.state(name).name) } }
            return try await group.reduce(into: [(String, String)]()) { $0.append($1) }
        }
        #expect(states.count == 64)
        for (asked, answered) in states { #expect(asked == answered) }
        await client.shutdown()
        await t.stop()
    }

    @Test func withNoBreakerdTheUnavailablePolicyDecides() async throws {
        let port = try RedisServer.freePort()
        let address = BreakerAddress(host: "127.0.0.1", port: port)
        let deny = BreakerClient(configuration: .init(addresses: [address], whenUnavailable: .deny))
        do {
            _ = try await deny.run("down") { 1 }
            Issue.record("deny permitted")
        } catch let error as BreakerOpenError {
            #expect(error.source == .unavailablePolicy)
        }
        #expect(try await deny.run("down", fallback: { 0 }) { 1 } == 0)
        let allow = BreakerClient(configuration: .init(addresses: [address], whenUnavailable: .allow))
        #expect(try await allow.run("down") { 1 } == 1)

        var policy = BreakerPolicy()
        try policy.set("min_calls", to: "2")
        let local = BreakerClient(
            configuration: .init(addresses: [address], whenUnavailable: .local(policy)))
        for _ in 0..<2 {
            _ = try? await local.run("down") { () async throws -> Int in
                throw DependencyError(status: 503)
            }
        }
        // The local breaker has tripped: the fallback now runs without calling.
        #expect(try await local.run("down", fallback: { 0 }) { 1 } == 0)
        for c in [deny, allow, local] { await c.shutdown() }
    }

    @Test func refusedCommandsThrowAndDoNotDegrade() async throws {
        let t = try await TestServer.startForClients { $0.password = "secret" }
        let anonymous = t.client()
        do {
            _ = try await anonymous.run("x") { 1 }
            Issue.record("NOAUTH permitted")
        } catch let error as BreakerClientError {
            #expect(error.code == .refused)
            #expect(error.replyCode == "NOAUTH")
        }
        let replica = t.client { $0.password = "secret" }
        #expect(try await replica.run("x") { 1 } == 1)
        for c in [anonymous, replica] { await c.shutdown() }
        await t.stop()
    }
}
