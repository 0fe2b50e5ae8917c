import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Synchronization
import Testing

@Suite struct ConcurrencyTests {
    /// 64 concurrent acquirers on separate store instances (as many replicas would be) against
    /// half_open_permits = 3: never more than 3 live trial permits.
    @Test func halfOpenStampedeNeverExceedsPermits() async throws {
        let prefix = TestRedis.uniquePrefix("stampede")
        let policy: [(String, String)] = BreakerRulesTests.small + [("half_open_permits", "3"), ("success_threshold", "3")]
        let replicas = try (0..<8).map { _ in try StoreHarness(prefix: prefix, policy: policy) }
        defer { for r in replicas { r.shutdown() } }
        let h = replicas[0]
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let t = t0 + 1000

        let permits = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let r = try await replicas[i % replicas.count].store.acquire(h.name(), now: t + i % 3)
                    return r.decision.permitValue
                }
            }
            return try await group.reduce(into: [String]()) { if let p = $1 { $0.append(p) } }
        }
        #expect(permits.count == 3)
        #expect(Set(permits).count == 3)
        #expect(try await h.store.state(h.name(), now: t + 3).liveTrials == 3)

        // Another wave while all three are live: nobody else gets in.
        let second = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<64 {
                group.addTask { try await replicas[i % replicas.count].store.acquire(h.name(), now: t + 10).decision.permitValue != nil }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(second == 0)

        // The breaker still works: the three trials succeed and close it.
        for p in permits { _ = try await h.store.report(h.name(), permit: p, outcome: .success, now: t + 20) }
        #expect(try await h.store.state(h.name(), now: t + 20).state == .closed)
    }

    @Test func stampedeThenAFailedTrialReopens() async throws {
        let prefix = TestRedis.uniquePrefix("stampede2")
        let policy: [(String, String)] = BreakerRulesTests.small + [("half_open_permits", "3")]
        let replicas = try (0..<4).map { _ in try StoreHarness(prefix: prefix, policy: policy) }
        defer { for r in replicas { r.shutdown() } }
        let h = replicas[0]
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let t = t0 + 1000
        let permits = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 0..<64 {
                group.addTask { try await replicas[i % 4].store.acquire(h.name(), now: t).decision.permitValue }
            }
            return try await group.reduce(into: [String]()) { if let p = $1 { $0.append(p) } }
        }
        #expect(permits.count == 3)
        let r = try await h.store.report(h.name(), permit: permits[0], outcome: .failure, now: t + 1)
        #expect(r.state == .open)
        // The other two trials are now from an earlier generation.
        for p in permits.dropFirst() {
            #expect(try await h.store.report(h.name(), permit: p, outcome: .success, now: t + 2).effect == .stale)
        }
        #expect(try await h.store.state(h.name(), now: t + 2).state == .open)
    }

    /// Two store instances on separate connections — two replicas — see one state.
    @Test func twoReplicasSeeOneState() async throws {
        let prefix = TestRedis.uniquePrefix("replicas")
        let a = try StoreHarness(prefix: prefix, policy: BreakerRulesTests.small)
        let b = try StoreHarness(prefix: prefix, policy: BreakerRulesTests.small)
        defer { a.shutdown(); b.shutdown() }
        // Failures reported through A and B alternately trip the one shared breaker.
        try await a.call(.failure, at: t0)
        try await b.call(.failure, at: t0)
        try await a.call(.failure, at: t0)
        #expect(try await b.store.state(b.name(), now: t0).failures == 3)
        #expect(try await b.call(.failure, at: t0).state == .open)
        // A denies at once, with the same retry-after.
        #expect(try await a.store.acquire(a.name(), now: t0 + 400).decision == .deny(state: .open, retryAfterMs: 600))
        // A permit issued through A can be reported through B.
        let trial = try await a.permit(at: t0 + 1000)
        #expect(try await b.store.report(b.name(), permit: trial, outcome: .success, now: t0 + 1001).state == .closed)
        #expect(try await a.store.state(a.name(), now: t0 + 1001).state == .closed)
    }

    /// Hundreds of concurrent reports in closed state lose no count: each script is atomic.
    @Test func concurrentReportsAreAllCounted() async throws {
        let prefix = TestRedis.uniquePrefix("atomic")
        let policy: [(String, String)] = BreakerRulesTests.small + [("min_calls", "100000")]
        let replicas = try (0..<4).map { _ in try StoreHarness(prefix: prefix, policy: policy) }
        defer { for r in replicas { r.shutdown() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                group.addTask { try await replicas[i % 4].call(i % 4 == 0 ? .failure : .success, at: t0 + i % 7) }
            }
            try await group.waitForAll()
        }
        let s = try await replicas[0].store.state(replicas[0].name(), now: t0 + 10)
        #expect(s.calls == 400 && s.failures == 100)
    }
}
