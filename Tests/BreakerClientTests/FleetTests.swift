import BreakerCore
import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Synchronization
import Testing

@testable import BreakerClient

/// Fail-over between breakerd processes, events, and the open-state cache.
@Suite struct FleetTests {
    @Test func failsOverToTheSecondBreakerdWhenTheFirstStops() async throws {
        let prefix = TestRedis.uniquePrefix("fleet")
        let first = try await TestServer.startForClients(prefix: prefix)
        let second = try await TestServer.startForClients(prefix: prefix)
        let client = BreakerClient(
            configuration: .init(
                addresses: [first.address, second.address], requestTimeout: .seconds(2),
                whenUnavailable: .deny))
        let name = uniqueBreaker("failover")
        #expect(try await client.run(name) { 1 } == 1)
        await client.flushReports()
        await first.stop()
        // Every call still reaches a breakerd (the deny policy would show otherwise).
        for _ in 0..<5 {
            #expect(try await client.run(name) { 2 } == 2)
        }
        await client.flushReports()
        let state = try await client.state(name)
        #expect(state.calls == 6)
        await client.shutdown()
        await second.stop()
    }

    @Test func eventsArriveAsParsedLines() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("events")
        let live = Flag()
        let events = client.events([name]) { if case .live = $0 { live.set() } }
        #expect(await eventually { live.isSet })
        try await client.force(name, mode: .forcedOpen, reason: "vendor outage today")
        var iterator = events.makeAsyncIterator()
        let event = try #require(await iterator.next())
        #expect(event.breaker == name)
        #expect(event.from == .closed)
        #expect(event.to == .open)
        #expect(event["why"] == "vendor outage today")
        await client.shutdown()
        await t.stop()
    }

    @Test func aResetEventClearsTheLocalOpenState() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let admin = t.client()
        let name = uniqueBreaker("cache")
        // The first run starts the client's subscription to breakers; wait until it is live.
        #expect(try await client.run(name) { 0 } == 0)
        #expect(await eventually { client.openStates.isLive })
        for _ in 0..<4 {
            _ = try? await client.run(name) { () async throws -> Int in throw DependencyError(status: 503)
            }
        }
        await client.flushReports()
        #expect(try await admin.state(name).state == .open)
        // The trip's own event may still be on its way: it would clear what the next deny teaches.
        try await Task.sleep(for: .milliseconds(200))
        // breakerd denies once; the client learns the breaker is open and denies locally after.
        let first = await sourceOfDeny(client, name)
        #expect(first == .breakerd)
        let second = await sourceOfDeny(client, name)
        #expect(second == .openStateCache)
        // An operator resets it elsewhere; once the event arrives the client permits again.
        try await admin.reset(name)
        #expect(await eventually { (try? await client.run(name) { 1 }) == 1 })
        await client.shutdown()
        await admin.shutdown()
        await t.stop()
    }

    private func sourceOfDeny(_ client: BreakerClient, _ name: String) async -> DecisionSource? {
        do {
            _ = try await client.run(name) { 1 }
            return nil
        } catch let error as BreakerOpenError {
            return error.source
        } catch {
            return nil
        }
    }
}

/// The parsers, on the lines PROTOCOL.md shows.
@Suite struct LineParsingTests {
    @Test func stateLine() throws {
        let s = try BreakerStatus(
            parsing:
                "payments open mode=forced_open gen=3 calls=0 failures=0 slow=0 failure_rate=0.625 slow_rate=0 trials=0/1 retry_after_ms=1200 mode_by=admin@1.2.3.4:5/- mode_until=0 future=1"
        )
        #expect(s.name == "payments")
        #expect(s.state == .open)
        #expect(s.mode == .forcedOpen)
        #expect(s.failureRate == 0.625)
        #expect(s.halfOpenPermits == 1)
        #expect(s.retryAfterMs == 1200)
        #expect(s.modeBy == "admin@1.2.3.4:5/-")
    }

    @Test func eventLineKeepsTheReasonsSpaces() throws {
        let e = try BreakerEvent(
            parsing:
                "payments closed->closed gen=0 at=1795382214217 reason=force mode=forced_closed by=admin@x/- why=vendor says fixed"
        )
        #expect(e.from == .closed && e.to == .closed)
        #expect(e.atMs == 1_795_382_214_217)
        #expect(e.reason == "force")
        #expect(e["by"] == "admin@x/-")
        #expect(e["why"] == "vendor says fixed")
    }

    @Test func addresses() throws {
        #expect(
            try BreakerAddress(parsing: "10.0.0.1:7421") == BreakerAddress(host: "10.0.0.1", port: 7421))
        #expect(try BreakerAddress(parsing: "breakerd") == BreakerAddress(host: "breakerd", port: 7420))
        #expect(try BreakerAddress(parsing: "[::1]:7000") == BreakerAddress(host: "::1", port: 7000))
        #expect(throws: BreakerClientError.self) { try BreakerAddress(parsing: "host:port") }
    }
}
