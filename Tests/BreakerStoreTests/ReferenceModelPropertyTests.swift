import BreakerCore
import BreakerStore
import RedisTestSupport
import Testing

/// Random sequences of acquire, report and time steps through the Lua scripts and through the
/// pure-Swift reference model must give the same decisions. A failure prints the seed and step.
@Suite struct ReferenceModelPropertyTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seeds: [UInt64] = [1, 2, 3, 4, 5, 6, 7, 8, 0xC0FFEE, 0xBEEF, 42, 2026]

    @Test(arguments: seeds)
    func scriptsAgreeWithTheModel(seed: UInt64) async throws {
        try await check(seed: seed, asOverrides: false)
    }

    /// The same, with the random policy set on the breaker (its config key) over a default that
    /// differs in every key, so every policy value the scripts use comes from the overrides.
    @Test(arguments: seeds.prefix(6))
    func scriptsAgreeWithTheModelUnderPerBreakerOverrides(seed: UInt64) async throws {
        try await check(seed: seed, asOverrides: true)
    }

    func check(seed: UInt64, asOverrides: Bool) async throws {
        var rng = SplitMix(state: seed)
        // A random policy, small enough that every rule is exercised within a few hundred steps.
        let windowMs = [1000, 2000, 5000].randomElement(using: &rng)!
        let buckets = [1, 2, 5, 10].randomElement(using: &rng)!
        let pairs: [(String, String)] = [
            ("window_ms", String(windowMs)), ("buckets", String(buckets)),
            ("failure_rate", ["0.25", "0.5", "0.75"].randomElement(using: &rng)!),
            ("min_calls", String(Int.random(in: 1...4, using: &rng))),
            ("slow_call_ms", ["0", "50", "200"].randomElement(using: &rng)!),
            ("slow_call_rate", ["0.5", "1"].randomElement(using: &rng)!),
            ("open_ms", String([100, 300, 700].randomElement(using: &rng)!)),
            ("open_backoff", ["1", "1.5", "2"].randomElement(using: &rng)!),
            ("max_open_ms", "2000"),
            ("half_open_permits", String(Int.random(in: 1...3, using: &rng))),
            ("success_threshold", String(Int.random(in: 1...3, using: &rng))),
            ("permit_ttl_ms", String([150, 400, 1000].randomElement(using: &rng)!)),
        ]
        let h: StoreHarness
        if asOverrides {
            h = try StoreHarness(policy: [
                ("window_ms", "60000"), ("buckets", "3"), ("failure_rate", "0.9"), ("min_calls", "50"),
                ("slow_call_ms", "5"), ("slow_call_rate", "0.1"), ("open_ms", "50000"), ("open_backoff", "3"),
                ("max_open_ms", "900000"), ("half_open_permits", "7"), ("success_threshold", "9"),
                ("permit_ttl_ms", "77777"),
            ])
            _ = try await h.store.setPolicy(h.name("prop"), pairs, actor: "prop")
        } else {
            h = try StoreHarness(policy: pairs)
        }
        defer { h.shutdown() }
        let policy = try BreakerPolicy().applying(pairs)
        var model = BreakerModel(policy: policy)
        var now = t0
        var permits: [String] = []
        let name = h.name("prop")
        let context = "seed \(seed)\(asOverrides ? " (as overrides)" : ""), policy \(pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " "))"

        for step in 0..<400 {
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 40 {
                let expected = model.acquire(now: now)
                let got = try await h.store.acquire(name, now: now).decision
                #expect(got == expected, "step \(step) acquire at +\(now - t0): \(context)")
                if got != expected { return }
                if let p = got.permitValue { permits.append(p) }
            } else if roll < 80, !permits.isEmpty {
                // Report a random outstanding permit (sometimes one already reported).
                let i = Int.random(in: 0..<permits.count, using: &rng)
                let permit = roll < 75 ? permits.remove(at: i) : permits[i]
                let outcome = [Outcome.success, .success, .failure, .failure, .ignore].randomElement(using: &rng)!
                let latency: Int? = Bool.random(using: &rng) ? Int.random(in: 0...300, using: &rng) : nil
                let expected = model.report(permit: permit, outcome: outcome, latencyMs: latency, now: now)
                let got = try await h.store.report(name, permit: permit, outcome: outcome, latencyMs: latency, now: now)
                #expect(got.effect == expected, "step \(step) report \(permit) \(outcome) at +\(now - t0): \(context)")
                #expect(got.state == model.state, "step \(step) state after report: \(context)")
                if got.effect != expected || got.state != model.state { return }
            } else {
                now += [1, 10, 50, 120, 400, 900].randomElement(using: &rng)!
                let s = try await h.store.state(name, now: now)
                let w = model.window(now: now)
                #expect(s.calls == w.calls && s.failures == w.failures && s.slowCalls == w.slow,
                    "step \(step) window at +\(now - t0): store \(s.calls)/\(s.failures)/\(s.slowCalls) model \(w): \(context)")
                #expect(s.liveTrials == model.liveTrials(now: now), "step \(step) live trials: \(context)")
            }
        }
        // Every run should reach the interesting states; otherwise the policy space needs widening.
        let reached = model.reachedStates
        #expect(reached.contains(.open), "no trip in 400 steps: \(context)")
    }
}
