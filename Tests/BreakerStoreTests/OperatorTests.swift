import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// Modes, reset, configuration, history, events and keys.
@Suite struct OperatorTests {
    static let small = BreakerRulesTests.small

    @Test func forcedOpenDeniesUntilItsTTLThenTrialsDecide() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let r = try await h.store.force(h.name(), mode: .forcedOpen, ttlMs: 3000, actor: "admin@10.0.0.1:5000/ops", reason: "db migration", now: t0)
        #expect(r.state == .open && r.mode == .forcedOpen)
        #expect(try await h.store.acquire(h.name(), now: t0 + 1000).decision == .deny(state: .open, retryAfterMs: 2000))
        let s = try await h.store.state(h.name(), now: t0 + 1000)
        #expect(s.mode == .forcedOpen && s.modeBy == "admin@10.0.0.1:5000/ops" && s.modeWhy == "db migration")
        #expect(s.modeAt == t0 && s.modeUntil == t0 + 3000)
        // At its expiry the mode lapses; the breaker is open with its time up, so a trial goes first.
        let after = try await h.store.acquire(h.name(), now: t0 + 3000)
        guard case .permit(_, .halfOpen) = after.decision else { Issue.record("\(after.decision)"); return }
        #expect(after.events.contains { $0.contains("reason=mode_expired") })
        #expect(try await h.store.state(h.name(), now: t0 + 3000).mode == .auto)
    }

    @Test func forcedOpenWithoutTTLHintsOpenMs() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.force(h.name(), mode: .forcedOpen, actor: "ops", now: t0)
        #expect(try await h.store.acquire(h.name(), now: t0 + 50_000).decision == .deny(state: .open, retryAfterMs: 1000))
        let auto = try await h.store.force(h.name(), mode: .auto, actor: "ops", reason: "done", now: t0 + 60_000)
        #expect(auto.mode == .auto)
        #expect(auto.events.first?.contains("reason=mode_auto mode=forced_open->auto by=ops why=done") == true)
    }

    @Test func forcedClosedPermitsAndCountsNothing() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let r = try await h.store.force(h.name(), mode: .forcedClosed, actor: "ops", now: t0 + 1)
        #expect(r.state == .closed)
        for i in 0..<10 {
            let rep = try await h.call(.failure, at: t0 + 2 + i)
            #expect(rep.effect == .notCounted && rep.state == .closed)
        }
        #expect(try await h.store.state(h.name(), now: t0 + 20).calls == 0)
    }

    @Test func metricsOnlyRunsTheMachineButAlwaysPermits() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.force(h.name(), mode: .metricsOnly, actor: "ops", reason: "dry run", now: t0)
        var transitions: [String] = []
        for i in 0..<4 { transitions += try await h.call(.failure, at: t0 + i).events }
        // The breaker opened and said so, yet acquires still get permits.
        #expect(transitions.count == 1 && transitions[0].contains("closed->open"))
        let a = try await h.store.acquire(h.name(), now: t0 + 10)
        guard case .permit(let p, .open) = a.decision else { Issue.record("\(a.decision)"); return }
        #expect(try await h.store.report(h.name(), permit: p, outcome: .failure, now: t0 + 10).effect == .notCounted)
        // Half-open trials still run: one trial permit, and the rest get permits that count nothing.
        let trial = try await h.permit(at: t0 + 1003)
        let shadow = try await h.permit(at: t0 + 1003)
        #expect(try await h.store.state(h.name(), now: t0 + 1003).liveTrials == 1)
        #expect(try await h.store.report(h.name(), permit: shadow, outcome: .failure, now: t0 + 1004).effect == .notCounted)
        #expect(try await h.store.report(h.name(), permit: trial, outcome: .success, now: t0 + 1004).state == .closed)
    }

    @Test func resetReturnsToClosedAutoWithAnEmptyWindow() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let before = try await h.permit(at: t0)
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        _ = try await h.store.force(h.name(), mode: .forcedOpen, actor: "ops", now: t0)
        let r = try await h.store.reset(h.name(), actor: "admin@1.2.3.4:5/console", reason: "dependency fixed", now: t0 + 1)
        #expect(r.state == .closed && r.mode == .auto)
        #expect(r.events.first?.contains("open->closed") == true)
        #expect(r.events.first?.contains("reason=reset by=admin@1.2.3.4:5/console why=dependency fixed") == true)
        let s = try await h.store.state(h.name(), now: t0 + 1)
        #expect(s.calls == 0 && s.opens == 0 && s.state == .closed)
        // A permit from before the reset counts nothing.
        #expect(try await h.store.report(h.name(), permit: before, outcome: .failure, now: t0 + 2).effect == .stale)
    }

    @Test func historyRecordsTransitionsNewestFirstAndIsCapped() async throws {
        let h = try StoreHarness(policy: Self.small, historyLength: 3)
        defer { h.shutdown() }
        for i in 0..<3 {
            _ = try await h.store.force(h.name(), mode: .forcedOpen, actor: "ops", now: t0 + i * 10)
            _ = try await h.store.reset(h.name(), actor: "ops", now: t0 + i * 10 + 5)
        }
        let history = try await h.store.history(h.name(), count: 10)
        #expect(history.count == 3)
        #expect(history[0].contains("open->closed gen=6 at=\(t0 + 25) reason=reset"))
        #expect(history[1].contains("closed->open gen=5 at=\(t0 + 20) reason=forced_open"))
        #expect(try await h.store.history(h.name(), count: 1).count == 1)
    }

    @Test func transitionsArePublished() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let channel = h.store.configuration.eventsChannel
        // Subscribe, trip, read: the event arrives on both channels with its figures.
        let sub = try await offPool { () -> SendableBox<RedisConnection> in
            let c = try RedisConnection(endpoint: TestRedis.endpoint, options: .init(commandTimeoutMs: 5000))
            try c.write(["SUBSCRIBE", channel, "\(channel):payments"])
            _ = try c.readReply()
            _ = try c.readReply()
            return SendableBox(c)
        }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let received = try await offPool { () -> [[String]] in
            [try sub.value.readReply(), try sub.value.readReply()].map { $0.elements?.compactMap(\.text) ?? [] }
        }
        #expect(received[0][0] == "message" && received[0][1] == channel)
        #expect(received[1][1] == "\(channel):payments")
        #expect(received[0][2].hasPrefix("payments closed->open gen=1 at=\(t0) reason=failure_rate failure_rate=1 threshold=0.5 calls=4 failures=4"))
    }

    @Test func configPerBreakerAndDefault() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.setPolicy(h.name(), [("min_calls", "2")], actor: "ops", reason: "noisy")
        #expect(try await h.store.policy(h.name()).minCalls == 2)
        #expect(try await h.store.policy(h.name("other")).minCalls == 4)
        try await h.call(.failure, at: t0)
        #expect(try await h.call(.failure, at: t0).state == .open)
        let audit = try await h.store.history(h.name(), count: 5)
        #expect(audit.last?.contains("reason=config set=min_calls=2 by=ops why=noisy") == true)

        await #expect { _ = try await h.store.setPolicy(h.name(), [("failure_rate", "2")], actor: "ops") } throws: {
            ($0 as? StoreError)?.code == .invalidPolicy && "\($0)".contains("failure_rate=2")
        }
        await #expect { _ = try await h.store.setPolicy(h.name(), [("nope", "1")], actor: "ops") } throws: {
            ($0 as? StoreError)?.code == .invalidPolicy && "\($0)".contains("nope")
        }
        // The default policy is fleet-wide: another store instance (another process) reads it back.
        try await h.store.setDefaultPolicy([("open_ms", "7000"), ("max_open_ms", "70000")])
        let other = try StoreHarness(prefix: h.prefix, policy: Self.small)
        defer { other.shutdown() }
        try await other.store.refreshDefaults()
        #expect(other.store.defaultPolicy().openMs == 7000)
        #expect(try await other.store.policy(h.name("fresh")).openMs == 7000)
        // `default` removes an override.
        _ = try await h.store.setPolicy(h.name(), [("min_calls", "default")], actor: "ops")
        #expect(try await h.store.policy(h.name()).minCalls == 4)
    }

    @Test func aBreakerWithItsOwnWindowCountsInItsOwnBuckets() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.setPolicy(h.name(), [("window_ms", "2000"), ("buckets", "2"), ("min_calls", "3")], actor: "ops")
        try await h.call(.failure, at: t0)
        try await h.call(.success, at: t0 + 1500)
        #expect(try await h.store.state(h.name(), now: t0 + 1999).calls == 2)
        // Its first 1 s bucket has left its 2 s window; the default 10 s window would still hold it.
        #expect(try await h.store.state(h.name(), now: t0 + 2000).calls == 1)
        try await h.call(.failure, at: t0 + 2000)
        #expect(try await h.call(.failure, at: t0 + 2001).state == .open)
        // Another breaker keeps the default window.
        try await h.call(.failure, at: t0, breaker: "other")
        #expect(try await h.store.state(h.name("other"), now: t0 + 9000).calls == 1)
    }

    @Test func settingsOutliveAnIdleExpiry() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.setPolicy(h.name(), [("min_calls", "2")], actor: "ops")
        try await h.call(.failure, at: t0)
        // What an idle expiry does: every key but the operator's settings goes.
        for k in ["s", "o", "t", "h"] { _ = try await h.redis("DEL", "\(h.prefix):{payments}:\(k)") }
        // The operator's min_calls=2 still applies to the breaker that comes back.
        try await h.call(.failure, at: t0 + 10)
        #expect(try await h.call(.failure, at: t0 + 11).state == .open)
    }

    @Test func keysSharePrefixAndHashTagAndExpireWhenIdle() async throws {
        let h = try StoreHarness(policy: Self.small, idleTTLMs: 60_000)
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        _ = try await h.permit(at: t0 + 1000)
        _ = try await h.store.setPolicy(h.name(), [("min_calls", "5")], actor: "ops")
        let keys = (try await h.redis("KEYS", "\(h.prefix)*").elements ?? []).compactMap(\.text).sorted()
        #expect(keys == ["s", "t", "h", "c"].map { "\(h.prefix):{payments}:\($0)" }.sorted())
        for key in keys {
            let ttl = try await h.redis("PTTL", key).int ?? -3
            if key.hasSuffix(":c") {
                #expect(ttl == -1, "operator settings outlive idleness")
            } else {
                #expect(ttl > 0 && ttl <= 60_000, "\(key) expires when idle")
            }
        }
        // Another prefix on the same Redis sees nothing of this one.
        let other = try StoreHarness(policy: Self.small)
        defer { other.shutdown() }
        #expect(try await other.store.state(h.name(), now: t0 + 1000).exists == false)
        #expect(try await other.store.list().isEmpty)
        #expect(try await h.store.list() == ["payments"])
    }

    @Test func idleBreakersVanish() async throws {
        let h = try StoreHarness(policy: Self.small, idleTTLMs: 2000)
        defer { h.shutdown() }
        try await h.call(.failure, at: t0)
        let ttl = try await h.redis("PTTL", "\(h.prefix):{payments}:s").int ?? -2
        #expect(ttl > 0 && ttl <= 2000)
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try await h.store.list().isEmpty)
        #expect(try await h.redis("KEYS", "\(h.prefix)*").elements?.isEmpty == true)
    }

    @Test func statesOfManyBreakersComeInOrderAcrossPipelines() async throws {
        // A private Redis: FUNCTION FLUSH on the shared one would fail the parallel tests' calls.
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let h = try StoreHarness(policy: Self.small + [("min_calls", "1")], endpoint: server.endpoint)
        defer { h.shutdown() }
        let names = (0..<1203).map { h.name("b\($0)") }
        // Every seventh breaker is tripped; the rest have seen one success.
        for (i, n) in names.enumerated() {
            try await h.call(i % 7 == 0 ? .failure : .success, at: t0, breaker: n.value)
        }
        _ = try await h.client.send(["FUNCTION", "FLUSH"])  // the pipelined read reloads the library too
        let states = try await h.store.states(names, now: t0 + 1)
        #expect(states.map(\.name) == names.map(\.value))
        #expect(states.enumerated().allSatisfy { i, s in s.state == (i % 7 == 0 ? .open : .closed) })
        #expect(states[1].calls == 1)
    }

    @Test func listMatchesAGlob() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for n in ["pay.eu", "pay.us", "ship"] { _ = try await h.store.acquire(h.name(n), now: t0) }
        #expect(try await h.store.list() == ["pay.eu", "pay.us", "ship"])
        #expect(try await h.store.list(glob: "pay.*") == ["pay.eu", "pay.us"])
    }

    @Test func theLibraryIsReloadedAfterRedisForgetsIt() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.permit(at: t0)
        let server = try await RedisServer.launch()
        defer { server.stop() }
        // On a private Redis: FUNCTION FLUSH, then every operation still works (not found -> load -> retry).
        let client = RedisClient(configuration: .patient(server.endpoint))
        defer { client.shutdown() }
        let store = BreakerStore(client: client, configuration: .init(keyPrefix: "p"))
        try await store.loadScripts()
        _ = try await store.acquire(h.name(), now: t0)
        _ = try await client.send(["FUNCTION", "FLUSH"])
        let r = try await store.acquire(h.name(), now: t0)
        #expect(r.decision.permitValue == "0.2.\(t0)")
        let stats = try await client.send(["INFO", "commandstats"]).text ?? ""
        #expect(stats.contains("cmdstat_function|load:calls=2,"), "\(stats)")
    }
}

/// Hands a non-Sendable value across one await when the test knows only one thread uses it at a time.
struct SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
