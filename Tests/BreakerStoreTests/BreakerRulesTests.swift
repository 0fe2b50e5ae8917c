import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// One test per rule of the breaker, each against the real scripts in a real Redis, with time
/// injected through the scripts' test-only `now` argument.
@Suite struct BreakerRulesTests {
    static let small: [(String, String)] = [
        ("window_ms", "10000"), ("buckets", "10"), ("min_calls", "4"), ("failure_rate", "0.5"),
        ("open_ms", "1000"), ("open_backoff", "2"), ("max_open_ms", "4000"), ("permit_ttl_ms", "5000"),
    ]

    @Test func closedPermitsAndCountsOutcomes() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let fresh = try await h.store.state(h.name(), now: t0)
        #expect(!fresh.exists && fresh.state == .closed && fresh.calls == 0)

        #expect(try await h.call(.success, at: t0).effect == .counted)
        #expect(try await h.call(.failure, at: t0 + 10).effect == .counted)
        let s = try await h.store.state(h.name(), now: t0 + 20)
        #expect(s.exists && s.state == .closed)
        #expect(s.calls == 2 && s.failures == 1 && s.failureRate == "0.5")
        // A breaker comes to exist with the default policy.
        #expect(try await h.store.policy(h.name()).minCalls == 4)
    }

    @Test func tripsOnlyWithMinimumVolume() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        // Three failures: a 100% failure rate, but fewer than min_calls=4.
        for i in 0..<3 { try await h.call(.failure, at: t0 + i) }
        #expect(try await h.store.state(h.name(), now: t0 + 5).state == .closed)
        // The fourth call reaches min_calls with rate 1.0 >= 0.5: open.
        let r = try await h.call(.failure, at: t0 + 6)
        #expect(r.state == .open)
        #expect(r.events.count == 1)
        let event = try #require(r.events.first)
        #expect(event.hasPrefix("payments closed->open gen=1 at=\(t0 + 6) reason=failure_rate failure_rate=1 threshold=0.5 calls=4 failures=4"))
    }

    @Test func failureRateThresholdIsInclusive() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        try await h.call(.success, at: t0)
        try await h.call(.success, at: t0 + 1)
        try await h.call(.failure, at: t0 + 2)
        // 2 failures of 4 calls = 0.5 >= 0.5.
        #expect(try await h.call(.failure, at: t0 + 3).state == .open)
    }

    @Test func ignoreCountsNothing() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for i in 0..<10 { #expect(try await h.call(.ignore, at: t0 + i).effect == .ignored) }
        let s = try await h.store.state(h.name(), now: t0 + 20)
        #expect(s.calls == 0 && s.state == .closed)
    }

    @Test func slowCallsTripBySlowRate() async throws {
        let h = try StoreHarness(policy: Self.small + [("slow_call_ms", "200"), ("slow_call_rate", "0.75")])
        defer { h.shutdown() }
        try await h.call(.success, at: t0, latencyMs: 10)
        try await h.call(.success, at: t0, latencyMs: 200)
        try await h.call(.success, at: t0, latencyMs: 500)
        let s = try await h.store.state(h.name(), now: t0)
        #expect(s.slowCalls == 2 && s.calls == 3)
        // 3 slow of 4 = 0.75 >= 0.75; all were successes, so only the slow rate can trip.
        let r = try await h.call(.success, at: t0, latencyMs: 1000)
        #expect(r.state == .open)
        #expect(r.events.first?.contains("reason=slow_call_rate") == true)
    }

    @Test func latencyIsMeasuredOnRedisClockWithoutLatencyArgument() async throws {
        let h = try StoreHarness(policy: Self.small + [("slow_call_ms", "300"), ("slow_call_rate", "1")])
        defer { h.shutdown() }
        let p = try await h.permit(at: t0)
        // Reported 400 ms after its acquire (injected clock), no LATENCY: slow.
        _ = try await h.store.report(h.name(), permit: p, outcome: .success, now: t0 + 400)
        #expect(try await h.store.state(h.name(), now: t0 + 400).slowCalls == 1)
    }

    @Test func slowCallsOffWhenSlowCallMsIsZero() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for _ in 0..<6 { try await h.call(.success, at: t0, latencyMs: 60_000) }
        let s = try await h.store.state(h.name(), now: t0)
        #expect(s.slowCalls == 0 && s.state == .closed)
    }

    @Test func oldBucketsDropOutOfTheWindow() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        // Window 10 s in 1 s buckets. Three failures now...
        for i in 0..<3 { try await h.call(.failure, at: t0 + i) }
        // ...seen 9.5 s later they are still in the window,
        #expect(try await h.store.state(h.name(), now: t0 + 9500).failures == 3)
        // ...but 10 s later their bucket has fallen out.
        #expect(try await h.store.state(h.name(), now: t0 + 10_000).calls == 0)
        // A failure then is alone in the window: no trip although 4 failures happened in 10.001 s.
        let r = try await h.call(.failure, at: t0 + 10_001)
        #expect(r.state == .closed)
        let s = try await h.store.state(h.name(), now: t0 + 10_001)
        #expect(s.calls == 1 && s.failures == 1)
        // And the dropped buckets are empty in Redis: only the current one holds a call.
        let record = try await h.stateRecord()
        #expect(record.buckets.filter { $0.calls > 0 }.count == 1)
        #expect(record.buckets.map(\.calls).reduce(0, +) == 1)
    }

    @Test func partialWindowSlideKeepsRecentBuckets() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        try await h.call(.failure, at: t0)  // bucket 0
        try await h.call(.success, at: t0 + 5000)  // bucket 5
        try await h.call(.failure, at: t0 + 5000)
        // At 10.5 s bucket 0 is out, bucket 5 is in.
        let s = try await h.store.state(h.name(), now: t0 + 10_500)
        #expect(s.calls == 2 && s.failures == 1)
        // A report at 10.5 s advances the stored window the same way.
        try await h.call(.failure, at: t0 + 10_500)
        let after = try await h.store.state(h.name(), now: t0 + 10_500)
        #expect(after.calls == 3 && after.failures == 2 && after.state == .closed)
        // One more failure: 3 of 4 in the window, trips.
        #expect(try await h.call(.failure, at: t0 + 10_600).state == .open)
    }

    @Test func openDeniesWithRetryAfterAndDeniesDoNotCount() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for i in 0..<4 { try await h.call(.failure, at: t0 + i) }
        let opened = t0 + 3
        for dt in [0, 100, 999] {
            let r = try await h.store.acquire(h.name(), now: opened + dt)
            #expect(r.decision == .deny(state: .open, retryAfterMs: 1000 - dt))
        }
        let s = try await h.store.state(h.name(), now: opened + 500)
        #expect(s.state == .open && s.retryAfterMs == 500 && s.calls == 0)
    }

    @Test func afterOpenTimeNextAcquireGoesHalfOpenWithLimitedTrials() async throws {
        let h = try StoreHarness(policy: Self.small + [("half_open_permits", "2"), ("success_threshold", "2")])
        defer { h.shutdown() }
        for i in 0..<4 { try await h.call(.failure, at: t0) ; _ = i }
        let t = t0 + 1000
        let a = try await h.store.acquire(h.name(), now: t)
        guard case .permit(_, .halfOpen) = a.decision else { Issue.record("\(a.decision)"); return }
        #expect(a.events.first?.contains("open->half_open") == true)
        let b = try await h.store.acquire(h.name(), now: t + 1)
        guard case .permit(_, .halfOpen) = b.decision else { Issue.record("\(b.decision)"); return }
        // Third: both trials are live, denied until the first lease could run out (5 s after it).
        #expect(try await h.store.acquire(h.name(), now: t + 2).decision == .deny(state: .halfOpen, retryAfterMs: 4998))
        #expect(try await h.store.state(h.name(), now: t + 2).liveTrials == 2)
    }

    @Test func failedTrialReopensWithBackoffUpToTheMaximum() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        var t = t0
        // Open times: 1000, then 2000, 4000, 4000 (max_open_ms).
        for expected in [2000, 4000, 4000] {
            t += try await h.store.state(h.name(), now: t).retryAfterMs
            let trial = try await h.permit(at: t)
            let r = try await h.store.report(h.name(), permit: trial, outcome: .failure, now: t)
            #expect(r.state == .open)
            #expect(r.events.first?.contains("reason=trial_failed") == true)
            #expect(try await h.store.state(h.name(), now: t).retryAfterMs == expected)
        }
    }

    @Test func successfulTrialsCloseAndClearTheWindowAndBackoff() async throws {
        let h = try StoreHarness(policy: Self.small + [("success_threshold", "2")])
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        // One failed trial first, so backoff is at 2 s.
        var t = t0 + 1000
        let p1 = try await h.permit(at: t)
        _ = try await h.store.report(h.name(), permit: p1, outcome: .failure, now: t)
        t += 2000
        let p2 = try await h.permit(at: t)
        #expect(try await h.store.report(h.name(), permit: p2, outcome: .success, now: t).state == .halfOpen)
        let p3 = try await h.permit(at: t)
        let r = try await h.store.report(h.name(), permit: p3, outcome: .success, now: t)
        #expect(r.state == .closed)
        #expect(r.events.first?.contains("half_open->closed") == true && r.events.first?.contains("reason=trials_succeeded") == true)
        let s = try await h.store.state(h.name(), now: t)
        #expect(s.calls == 0 && s.opens == 0)
        // Backoff was reset: the next trip opens for open_ms again.
        for _ in 0..<4 { try await h.call(.failure, at: t) }
        #expect(try await h.store.state(h.name(), now: t).retryAfterMs == 1000)
    }

    @Test func anExpiredTrialLeaseIsAFailedTrial() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let t = t0 + 1000
        let trial = try await h.permit(at: t)
        // Nobody reports; 5 s later the lease has run out: the next acquire re-opens (with backoff).
        let r = try await h.store.acquire(h.name(), now: t + 5000)
        #expect(r.decision == .deny(state: .open, retryAfterMs: 2000))
        #expect(r.events.first?.contains("half_open->open") == true && r.events.first?.contains("reason=trial_expired") == true)
        // The late report of that trial is from an earlier generation: counts nothing.
        #expect(try await h.store.report(h.name(), permit: trial, outcome: .success, now: t + 5001).effect == .stale)
        #expect(try await h.store.state(h.name(), now: t + 5001).state == .open)
    }

    @Test func lateReportsFromAnEarlierGenerationNeverTransition() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        // Two calls start while closed, then the breaker trips.
        let lateFailure = try await h.permit(at: t0)
        let lateSuccess = try await h.permit(at: t0)
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        // It recovers to half-open; a trial is in flight.
        let t = t0 + 1000
        let trial = try await h.permit(at: t)
        // The late failure from before the trip must not re-open the recovering breaker...
        let f = try await h.store.report(h.name(), permit: lateFailure, outcome: .failure, now: t + 1)
        #expect(f.effect == .stale && f.state == .halfOpen)
        // ...and the late success must not close it.
        let s = try await h.store.report(h.name(), permit: lateSuccess, outcome: .success, now: t + 2)
        #expect(s.effect == .stale && s.state == .halfOpen)
        #expect(try await h.store.report(h.name(), permit: trial, outcome: .success, now: t + 3).state == .closed)
    }

    @Test func reportingTheSamePermitTwiceCountsOnce() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let p = try await h.permit(at: t0)
        #expect(try await h.store.report(h.name(), permit: p, outcome: .failure, now: t0).effect == .counted)
        for _ in 0..<5 {
            #expect(try await h.store.report(h.name(), permit: p, outcome: .failure, now: t0).effect == .expired)
        }
        let s = try await h.store.state(h.name(), now: t0)
        #expect(s.calls == 1 && s.failures == 1 && s.state == .closed)
    }

    @Test func aPermitReportedAfterItsLeaseCountsNothing() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let p = try await h.permit(at: t0)
        #expect(try await h.store.report(h.name(), permit: p, outcome: .failure, now: t0 + 5000).effect == .expired)
        #expect(try await h.store.state(h.name(), now: t0 + 5000).calls == 0)
    }

    @Test func unknownPermitsAreRefused() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.permit(at: t0)
        for bad in ["0.2.\(t0)", "7.1.\(t0)", "0.1", "x", "1", "0.0.\(t0)", "-1.1.\(t0)", "0.1.x", String(repeating: "9", count: 65)] {
            await #expect { _ = try await h.store.report(h.name(), permit: bad, outcome: .success, now: t0) } throws: {
                ($0 as? StoreError)?.code == .unknownPermit
            }
        }
        // A permit of another breaker is unknown here.
        let other = try await h.permit("shipping", at: t0)
        _ = try await h.permit("shipping", at: t0)
        _ = other
        await #expect { _ = try await h.store.report(h.name(), permit: "0.2.\(t0)", outcome: .success, now: t0) } throws: {
            ($0 as? StoreError)?.code == .unknownPermit
        }
    }

    @Test func redisClockGovernsWithoutInjectedTime() async throws {
        let h = try StoreHarness(policy: Self.small + [("open_ms", "500"), ("min_calls", "1")])
        defer { h.shutdown() }
        func redisNow() async throws -> Int {
            let t = try await h.redis("TIME").elements!.compactMap(\.int)
            return Int(t[0]) * 1000 + Int(t[1]) / 1000
        }
        let before = try await redisNow()
        let p = try #require(try await h.store.acquire(h.name()).decision.permitValue)
        #expect(try await h.store.report(h.name(), permit: p, outcome: .failure).state == .open)
        let after = try await redisNow()
        // open_until was set from Redis's TIME inside the script.
        let openUntil = try await h.store.state(h.name()).openUntil
        #expect(openUntil - 500 >= before && openUntil - 500 <= after)
        // Once Redis's clock passes open_until, the next acquire is a half-open trial.
        try await Task.sleep(for: .milliseconds(max(0, openUntil - (try await redisNow())) + 20))
        guard case .permit(_, .halfOpen) = try await h.store.acquire(h.name()).decision else {
            Issue.record("expected a half-open trial after open_ms on Redis's clock")
            return
        }
    }
}

extension AcquireDecision {
    var permitValue: String? {
        if case .permit(let p, _) = self { return p }
        return nil
    }
}
