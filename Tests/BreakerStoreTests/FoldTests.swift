import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// Folds: outcomes a breakerd process gathered under its own permits, added to the breaker by one
/// script call, as that many reports would add them, with one trip check after them.
@Suite struct FoldTests {
    static let small = BreakerRulesTests.small

    @Test func foldedOutcomesAreCounted() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let r = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, now: t0)
        #expect(r.effect == .counted && r.state == .closed && r.generation == 0 && r.events.isEmpty)
        #expect(r.retryAfterMs == 0 && r.mode == .auto)
        #expect(r.slowCallMs == 0 && r.permitTTLMs == 5000)
        let s = try await h.store.state(h.name(), now: t0 + 1)
        #expect(s.exists && s.calls == 3 && s.failures == 1 && s.slowCalls == 0)
        // Folds and reports add up in one window.
        try await h.call(.success, at: t0 + 2)
        _ = try await h.store.fold(h.name(), generation: 0, calls: 2, failures: 0, slow: 0, now: t0 + 3)
        let after = try await h.store.state(h.name(), now: t0 + 3)
        #expect(after.calls == 6 && after.failures == 1 && after.state == .closed)
    }

    @Test func foldedOutcomesLeaveTheWindowLikeReportedOnes() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        // Window 10 s in 1 s buckets.
        _ = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, now: t0)
        _ = try await h.store.fold(h.name(), generation: 0, calls: 2, failures: 0, slow: 0, now: t0 + 5000)
        #expect(try await h.store.state(h.name(), now: t0 + 9999).calls == 5)
        #expect(try await h.store.state(h.name(), now: t0 + 10_000).calls == 2)
        _ = try await h.store.fold(h.name(), generation: 0, calls: 1, failures: 1, slow: 0, now: t0 + 10_500)
        let s = try await h.store.state(h.name(), now: t0 + 10_500)
        #expect(s.calls == 3 && s.failures == 1)
    }

    /// The same outcomes reported one by one and folded at once (where the last one reaches the
    /// thresholds) trip with the same event line.
    @Test(arguments: [
        (calls: 4, failures: 4, slow: 0, reason: "failure_rate"),
        (calls: 6, failures: 3, slow: 0, reason: "failure_rate"),
        (calls: 4, failures: 0, slow: 3, reason: "slow_call_rate"),
    ])
    func aFoldThatReachesTheThresholdsTripsAsReportsWould(calls: Int, failures: Int, slow: Int, reason: String) async throws {
        let policy = Self.small + [("slow_call_ms", "200"), ("slow_call_rate", "0.75")]
        let reported = try StoreHarness(policy: policy)
        let folded = try StoreHarness(policy: policy)
        defer { reported.shutdown(); folded.shutdown() }
        // Reports: the calls that do not trip first (successes, then fast failures), the tripping one last.
        var outcomes: [(Outcome, Int)] = []
        for i in 0..<calls {
            let failure = i >= calls - failures
            let isSlow = i >= calls - slow
            outcomes.append((failure ? .failure : .success, isSlow ? 500 : 10))
        }
        var last: ReportResult?
        for (i, (outcome, latency)) in outcomes.enumerated() {
            last = try await reported.call(outcome, at: t0 + i, latencyMs: latency)
            if i < calls - 1 { #expect(last?.state == .closed, "tripped before the last report") }
        }
        let at = t0 + calls - 1
        let f = try await folded.store.fold(folded.name(), generation: 0, calls: calls, failures: failures, slow: slow, now: at)
        #expect(f.effect == .counted && f.state == .open && f.generation == 1)
        #expect(last?.state == .open)
        #expect(f.events == last?.events)
        #expect(f.events.first?.contains("reason=\(reason)") == true)
        // Open: what a deny would say now.
        #expect(f.retryAfterMs == 1000)
        let after = try await folded.store.fold(folded.name(), generation: 1, calls: 1, failures: 1, slow: 0, now: at + 400)
        #expect(after.effect == .notCounted && after.state == .open && after.retryAfterMs == 600)
    }

    @Test func aStaleGenerationCountsNothing() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        _ = try await h.store.reset(h.name(), actor: "ops", now: t0 + 1)
        // Now closed in generation 2: outcomes gathered in generation 0 or 1 count nothing.
        for gen in [0, 1, 3] {
            let r = try await h.store.fold(h.name(), generation: gen, calls: 10, failures: 10, slow: 0, now: t0 + 2)
            #expect(r.effect == .stale && r.state == .closed && r.generation == 2 && r.events.isEmpty)
        }
        #expect(try await h.store.state(h.name(), now: t0 + 2).calls == 0)
        let r = try await h.store.fold(h.name(), generation: 2, calls: 2, failures: 0, slow: 0, now: t0 + 3)
        #expect(r.effect == .counted)
        #expect(try await h.store.state(h.name(), now: t0 + 3).calls == 2)
    }

    @Test func forcedModesCountNothing() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.force(h.name(), mode: .forcedClosed, actor: "ops", now: t0)
        let closed = try await h.store.fold(h.name(), generation: 0, calls: 10, failures: 10, slow: 0, now: t0 + 1)
        #expect(closed.effect == .notCounted && closed.state == .closed && closed.mode == .forcedClosed)
        #expect(closed.retryAfterMs == 0)
        #expect(try await h.store.state(h.name(), now: t0 + 1).calls == 0)

        let forced = try await h.store.force(h.name(), mode: .forcedOpen, ttlMs: 3000, actor: "ops", now: t0 + 2)
        let open = try await h.store.fold(h.name(), generation: forced.generation, calls: 5, failures: 0, slow: 0, now: t0 + 1002)
        #expect(open.effect == .notCounted && open.state == .open && open.mode == .forcedOpen)
        #expect(open.retryAfterMs == 2000)

        // metrics_only runs the machine: folds count and trip it.
        let metrics = try await h.store.force(h.name(), mode: .metricsOnly, actor: "ops", now: t0 + 3000)
        let reset = try await h.store.reset(h.name(), actor: "ops", now: t0 + 3001)
        #expect(metrics.mode == .metricsOnly && reset.mode == .auto)
        _ = try await h.store.force(h.name(), mode: .metricsOnly, actor: "ops", now: t0 + 3002)
        let gen = try await h.store.state(h.name(), now: t0 + 3002).generation
        let counted = try await h.store.fold(h.name(), generation: gen, calls: 4, failures: 4, slow: 0, now: t0 + 3003)
        #expect(counted.effect == .counted && counted.state == .open && counted.mode == .metricsOnly)
        #expect(counted.events.contains { $0.contains("closed->open") && $0.contains("reason=failure_rate") })
    }

    @Test func aLapsedModeIsLiftedFirst() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        _ = try await h.store.force(h.name(), mode: .forcedClosed, ttlMs: 1000, actor: "ops", now: t0)
        let r = try await h.store.fold(h.name(), generation: 0, calls: 2, failures: 0, slow: 0, now: t0 + 1000)
        #expect(r.mode == .auto && r.effect == .counted)
        #expect(r.events.contains { $0.contains("reason=mode_expired") })
    }

    @Test func halfOpenFoldsCountNothingAndSayWhenATrialMayRun() async throws {
        let h = try StoreHarness(policy: Self.small + [("half_open_permits", "1")])
        defer { h.shutdown() }
        for _ in 0..<4 { try await h.call(.failure, at: t0) }
        let t = t0 + 1000
        _ = try await h.permit(at: t)
        let r = try await h.store.fold(h.name(), generation: 2, calls: 3, failures: 0, slow: 0, now: t + 100)
        #expect(r.state == .halfOpen && r.effect == .notCounted)
        // The one trial permit is out: an acquire would be denied until its lease could run out.
        #expect(r.retryAfterMs == 4900)
        // A fold with no calls only reads.
        let read = try await h.store.fold(h.name(), generation: 2, calls: 0, failures: 0, slow: 0, now: t + 200)
        #expect(read.state == .halfOpen && read.retryAfterMs == 4800 && read.events.isEmpty)
        // The lease runs out: the fold sees the failed trial, as a report would.
        let lapsed = try await h.store.fold(h.name(), generation: 2, calls: 1, failures: 0, slow: 0, now: t + 5000)
        #expect(lapsed.state == .open && lapsed.effect == .stale)
        #expect(lapsed.events.first?.contains("reason=trial_expired") == true)
    }

    @Test func aFoldWithNoCallsOnlyReads() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let r = try await h.store.fold(h.name(), generation: 0, calls: 0, failures: 0, slow: 0, now: t0)
        #expect(r.state == .closed && r.effect == .counted && r.events.isEmpty)
        #expect(try await h.store.state(h.name(), now: t0).calls == 0)
    }

    @Test func badCountsAreRefused() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for (gen, calls, failures, slow) in [(-1, 1, 0, 0), (0, -1, 0, 0), (0, 1, 2, 0), (0, 1, 0, 2), (0, 2, -1, 0)] {
            await #expect {
                _ = try await h.store.fold(h.name(), generation: gen, calls: calls, failures: failures, slow: slow, now: t0)
            } throws: {
                ($0 as? StoreError)?.code == .invalidArgument
            }
        }
    }

    /// Random runs of batches without failures or slow calls (so nothing trips) give the same window
    /// whether each outcome is reported or the batch is folded: buckets and their leaving the window
    /// work the same for counts above one.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func foldsAndReportsKeepTheSameWindow(seed: UInt64) async throws {
        var rng = ReferenceModelPropertyTests.SplitMix(state: seed)
        let policy: [(String, String)] = [("window_ms", "2000"), ("buckets", "4"), ("min_calls", "1000")]
        let reported = try StoreHarness(policy: policy)
        let folded = try StoreHarness(policy: policy)
        defer { reported.shutdown(); folded.shutdown() }
        var now = t0
        for step in 0..<60 {
            now += [0, 1, 120, 499, 500, 900, 2100].randomElement(using: &rng)!
            let n = Int.random(in: 0...4, using: &rng)
            for _ in 0..<n { try await reported.call(.success, at: now) }
            _ = try await folded.store.fold(folded.name(), generation: 0, calls: n, failures: 0, slow: 0, now: now)
            let a = try await reported.store.state(reported.name(), now: now)
            let b = try await folded.store.state(folded.name(), now: now)
            #expect(a.calls == b.calls, "step \(step) at +\(now - t0): reported \(a.calls), folded \(b.calls)")
            if a.calls != b.calls { return }
        }
    }
}
