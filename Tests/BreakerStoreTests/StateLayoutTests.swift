import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// The state record's encoding (see breakerd.lua): what it keeps, what it costs in memory, how it
/// follows a change of the default policy, and how a record in the earlier hash layout carries on.
@Suite struct StateLayoutTests {
    static let small = BreakerRulesTests.small

    @Test func aCallInTheCurrentBucketKeepsTheRecordSmall() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        try await h.call(.failure, at: t0)
        try await h.call(.success, at: t0 + 10)
        let record = try await h.stateRecord()
        #expect(record.byteCount == StateRecord.ringOffset)
        #expect(record.header["calls"] == 2 && record.header["fails"] == 1 && record.header["bc"] == 2)
        #expect(record.header["seq"] == 2 && record.header["on"] == 0)
        // A call in a later bucket moves the current one into the ring.
        try await h.call(.success, at: t0 + 3000)
        let later = try await h.stateRecord()
        #expect(later.byteCount == StateRecord.ringOffset + 10 * 24)
        #expect(later.buckets.map(\.calls).reduce(0, +) == 3)
        #expect(later.buckets[0].calls == 1 && later.buckets.filter { $0.calls == 2 }.count == 1)
        let memory = try await h.redis("MEMORY", "USAGE", "\(h.prefix):{payments}:s").int ?? 0
        #expect(memory > 0 && memory < 1024)
    }

    /// Denying acquires of an open breaker change nothing, so they write nothing.
    @Test func denialsOfAnOpenBreakerWriteNothing() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let key = "\(h.prefix):{payments}:s"
        let before = try await h.redis("GET", key)
        for i in 1...3 {
            let r = try await h.store.acquire(h.name(), now: t0 + i * 100)
            #expect(r.decision == .deny(state: .open, retryAfterMs: 1000 - i * 100))
        }
        #expect(try await h.redis("GET", key) == before)
    }

    /// The record keeps the default policy it last parsed; a new default (another breakerd's
    /// CONFIG SET default) applies from the next call.
    @Test func aNewDefaultPolicyAppliesAtTheNextCall() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for i in 0..<2 { try await h.call(.failure, at: t0 + i) }
        try await h.store.setDefaultPolicy([("min_calls", "3")])
        #expect(try await h.call(.failure, at: t0 + 2).state == .open)
        // And back to four calls, for the same breaker.
        _ = try await h.store.reset(h.name(), actor: "ops", now: t0 + 3)
        try await h.store.setDefaultPolicy([("min_calls", "default")])
        for i in 0..<3 { #expect(try await h.call(.failure, at: t0 + 4 + i).state == .closed) }
        #expect(try await h.call(.failure, at: t0 + 7).state == .open)
    }

    /// A policy text too long for the record's policy block (128 bytes or more) is parsed on every
    /// call instead, and the block stays empty.
    @Test func aLongPolicyTextIsParsedEachCall() async throws {
        let long: [(String, String)] = [
            ("window_ms", "86400000"), ("buckets", "30"), ("failure_rate", "0.30000000000000004"),
            ("min_calls", "10000000"), ("slow_call_ms", "86400000"), ("slow_call_rate", "0.30000000000000004"),
            ("open_ms", "86400000"), ("open_backoff", "1.0000000000000002"), ("max_open_ms", "604800000"),
            ("half_open_permits", "10000"), ("success_threshold", "10000"), ("permit_ttl_ms", "86400000"),
        ]
        let h = try StoreHarness(policy: long)
        defer { h.shutdown() }
        #expect(h.store.defaultPolicy().values.map(\.value).joined(separator: " ").utf8.count >= 128)
        #expect(try await h.call(.failure, at: t0).effect == .counted)
        let r = try await h.store.fold(h.name(), generation: 0, calls: 9_999_999, failures: 3_000_000, slow: 0, now: t0 + 1)
        #expect(r.state == .open && r.slowCallMs == 86_400_000 && r.permitTTLMs == 86_400_000)
        #expect(r.events.first?.contains("failure_rate=0.3 threshold=0.3 calls=10000000 failures=3000001 open_ms=86400000") == true)
        guard case .string(let bytes) = try await h.redis("GET", "\(h.prefix):{payments}:s") else {
            Issue.record("no record")
            return
        }
        #expect(bytes[144..<StateRecord.ringOffset].allSatisfy { $0 == 0 })
    }

    /// The permit zsets get their idle expiry from the permit that creates them, also when every
    /// permit was reported (the zset gone) and the next one makes it again.
    @Test func permitZsetsAlwaysExpireWhenIdle() async throws {
        let h = try StoreHarness(policy: Self.small, idleTTLMs: 60_000)
        defer { h.shutdown() }
        let outstanding = "\(h.prefix):{payments}:o"
        for i in 0..<5 {
            let p = try await h.permit(at: t0 + i)
            let ttl = try await h.redis("PTTL", outstanding).int ?? -3
            #expect(ttl > 0 && ttl <= 60_000, "round \(i): PTTL \(ttl)")
            _ = try await h.store.report(h.name(), permit: p, outcome: .success, now: t0 + i)
            #expect(try await h.redis("EXISTS", outstanding).int == 0)
        }
        // Two permits out, one reported: the zset keeps its expiry.
        let a = try await h.permit(at: t0 + 10)
        _ = try await h.permit(at: t0 + 11)
        _ = try await h.store.report(h.name(), permit: a, outcome: .success, now: t0 + 12)
        let ttl = try await h.redis("PTTL", outstanding).int ?? -3
        #expect(ttl > 0 && ttl <= 60_000)
        #expect(try await h.stateRecord().header["on"] == 1)
    }

    /// A breaker stored by an earlier breakerd (the state as a hash) carries on with its figures,
    /// its generation and its outstanding permits, and is rewritten in the new layout.
    @Test func aRecordInTheEarlierHashLayoutCarriesOn() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let slot = (t0 / 1000) % 10
        // Closed in generation 2, five permits issued; 3 calls in the window: 2 (1 failure) in the
        // current bucket, 1 failure in the bucket before it; permit 5 still out.
        let base = try await Self.writeHashLayout(h, gen: 2, seq: 5, calls: 3, fails: 2, buckets: [
            "c\(slot)", "2", "f\(slot)", "1", "c\((slot + 9) % 10)", "1", "f\((slot + 9) % 10)", "1",
        ])
        _ = try await h.client.send(["PEXPIRE", base + "s", "60000"])
        _ = try await h.client.send(["ZADD", base + "o", String(t0), "5"])
        let s = try await h.store.state(h.name(), now: t0 + 1)
        #expect(s.exists && s.state == .closed && s.generation == 2 && s.calls == 3 && s.failures == 2)
        // The read-only state script leaves the hash as it is.
        #expect(try await h.redis("TYPE", base + "s").text == "hash")
        // The outstanding permit counts; the window trips on the fourth call (3 failures of 4).
        let r = try await h.store.report(h.name(), permit: "2.5.\(t0)", outcome: .failure, now: t0 + 2)
        #expect(r.effect == .counted && r.state == .open && r.generation == 3)
        #expect(r.events.first?.contains("calls=4 failures=3") == true)
        #expect(try await h.redis("TYPE", base + "s").text == "string")
        let ttl = try await h.redis("PTTL", base + "s").int ?? -3
        #expect(ttl > 0 && ttl <= 60_000)
    }

    @Test func aRecordInTheEarlierLayoutMovesOnWithTime() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let slot = (t0 / 1000) % 10
        let base = try await Self.writeHashLayout(h, gen: 0, seq: 3, calls: 3, fails: 1, buckets: [
            "c\(slot)", "1", "f\(slot)", "1", "c\((slot + 8) % 10)", "2",
        ])
        // 8.5 s later the bucket two before head has left the window; an acquire rewrites the record.
        _ = try await h.permit(at: t0 + 8500)
        #expect(try await h.redis("TYPE", base + "s").text == "string")
        let s = try await h.store.state(h.name(), now: t0 + 8500)
        #expect(s.calls == 1 && s.failures == 1 && s.generation == 0)
        #expect(try await h.store.state(h.name(), now: t0 + 9999).calls == 1)
        #expect(try await h.store.state(h.name(), now: t0 + 10_000).calls == 0)
    }

    /// Stores breaker `payments` closed, the way an earlier breakerd did (a hash, its window in
    /// 1 s buckets with head at t0); returns the key base.
    static func writeHashLayout(
        _ h: StoreHarness, gen: Int, seq: Int, calls: Int, fails: Int, buckets: [String]
    ) async throws -> String {
        let base = "\(h.prefix):{payments}:"
        _ = try await h.client.send(
            [
                "HSET", base + "s", "state", "closed", "gen", String(gen), "seq", String(seq), "head", String(t0 / 1000),
                "calls", String(calls), "fails", String(fails), "slows", "0", "nb", "10", "bms", "1000",
                "open_until", "0", "opens", "0", "oks", "0", "cf", "0", "ex", String(t0),
            ] + buckets)
        return base
    }
}
