/// A small in-memory model of the breaker rules, written plainly (absolute bucket numbers, plain
/// dictionaries) rather than the way the Lua scripts do it. The property test drives both with the
/// same steps and requires the same decisions; breakerd's `local` degraded mode uses it too.
/// Covers the state machine in `auto` and `metrics_only` modes.
public struct BreakerModel: Sendable {
    public var policy: BreakerPolicy
    public var metricsOnly = false
    public private(set) var state: BreakerState = .closed
    public private(set) var generation = 0
    private var sequence = 0
    /// Absolute bucket number -> (calls, failures, slow).
    private var buckets: [Int: (calls: Int, failures: Int, slow: Int)] = [:]
    private var opens = 0
    private var openUntil = 0
    private var trialSuccesses = 0
    /// Permit sequence -> acquire time, for permits of the current generation.
    private var outstanding: [Int: Int] = [:]
    private var trials: [Int: Int] = [:]
    public typealias Transition = (from: BreakerState, to: BreakerState, reason: String)
    /// Transitions made since the last `drainTransitions()`, oldest first.
    private var pending: [Transition] = []
    /// Every state the model has moved to, ever (for tests that check coverage).
    public private(set) var reachedStates: Set<BreakerState> = []

    public init(policy: BreakerPolicy) {
        self.policy = policy
    }

    public mutating func acquire(now: Int) -> AcquireDecision {
        sweepTrials(now: now)
        if state == .open && now >= openUntil {
            trials = [:]
            trialSuccesses = 0
            transition(to: .halfOpen, reason: "open_elapsed")
        }
        switch state {
        case .closed:
            return .permit(permit: issue(now: now, trial: false), state: state)
        case .halfOpen where trials.count < policy.halfOpenPermits:
            return .permit(permit: issue(now: now, trial: true), state: state)
        default:
            if metricsOnly { return .permit(permit: issue(now: now, trial: false), state: state) }
            return .deny(state: state, retryAfterMs: retryAfter(now: now))
        }
    }

    public mutating func report(permit: String, outcome: Outcome, latencyMs: Int? = nil, now: Int) -> ReportEffect? {
        let parts = permit.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let gen = Int(parts[0]), let seq = Int(parts[1]), Int(parts[2]) != nil,
            gen <= generation, seq >= 1, seq <= sequence
        else { return nil }
        sweepTrials(now: now)
        if gen != generation {
            return .stale
        }
        if state == .halfOpen, let acquired = trials.removeValue(forKey: seq) {
            let latency = latencyMs ?? (now - acquired)
            switch outcome {
            case .ignore:
                return .ignored
            case .failure:
                open(now: now, reason: "trial_failed")
            case .success where isSlow(latency):
                open(now: now, reason: "trial_slow")
            case .success:
                trialSuccesses += 1
                if trialSuccesses >= policy.successThreshold { close(reason: "trials_succeeded") }
            }
            return .counted
        }
        guard let acquired = outstanding.removeValue(forKey: seq), acquired > now - policy.permitTTLMs else {
            return .expired
        }
        if outcome == .ignore { return .ignored }
        guard state == .closed else { return .notCounted }
        let bucket = now / policy.bucketMs
        let latency = latencyMs ?? (now - acquired)
        var b = buckets[bucket] ?? (0, 0, 0)
        b.calls += 1
        if outcome == .failure { b.failures += 1 }
        if isSlow(latency) { b.slow += 1 }
        buckets[bucket] = b
        let w = window(now: now)
        if w.calls >= policy.minCalls {
            if Double(w.failures) / Double(w.calls) >= policy.failureRate {
                open(now: now, reason: "failure_rate")
            } else if policy.slowCallMs > 0 && Double(w.slow) / Double(w.calls) >= policy.slowCallRate {
                open(now: now, reason: "slow_call_rate")
            }
        }
        return .counted
    }

    /// Calls, failures and slow calls in the window that ends now.
    public func window(now: Int) -> (calls: Int, failures: Int, slow: Int) {
        guard state == .closed else { return (0, 0, 0) }
        let current = now / policy.bucketMs
        var total = (calls: 0, failures: 0, slow: 0)
        for (i, b) in buckets where i > current - policy.buckets && i <= current {
            total.calls += b.calls
            total.failures += b.failures
            total.slow += b.slow
        }
        return total
    }

    /// Trial permits whose lease has not run out.
    public func liveTrials(now: Int) -> Int {
        state == .halfOpen ? trials.values.filter { $0 + policy.permitTTLMs > now }.count : 0
    }

    private func isSlow(_ latency: Int) -> Bool { policy.slowCallMs > 0 && latency >= policy.slowCallMs }

    private mutating func issue(now: Int, trial: Bool) -> String {
        sequence += 1
        if trial { trials[sequence] = now } else { outstanding[sequence] = now }
        return "\(generation).\(sequence).\(now)"
    }

    private func retryAfter(now: Int) -> Int {
        switch state {
        case .open: return max(0, openUntil - now)
        case .halfOpen:
            guard let first = trials.values.min() else { return 0 }
            return max(1, first + policy.permitTTLMs - now)
        case .closed: return 0
        }
    }

    private mutating func sweepTrials(now: Int) {
        if state == .halfOpen && trials.values.contains(where: { $0 + policy.permitTTLMs <= now }) {
            open(now: now, reason: "trial_expired")
        }
    }

    private mutating func open(now: Int, reason: String) {
        opens += 1
        openUntil = now + policy.openDuration(opens: opens)
        trialSuccesses = 0
        buckets = [:]
        trials = [:]
        transition(to: .open, reason: reason)
    }

    private mutating func close(reason: String) {
        opens = 0
        openUntil = 0
        trialSuccesses = 0
        buckets = [:]
        trials = [:]
        transition(to: .closed, reason: reason)
    }

    /// Returns the transitions made since the last call and forgets them, so a long-lived model
    /// keeps no growing log.
    public mutating func drainTransitions() -> [Transition] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }

    private mutating func transition(to: BreakerState, reason: String) {
        if pending.count < 64 { pending.append((state, to, reason)) }
        reachedStates.insert(to)
        state = to
        generation += 1
        // Permits of an earlier generation are stale: their reports count nothing.
        outstanding = [:]
    }
}
