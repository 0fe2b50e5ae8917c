import BreakerCore

/// A breaker as breakerd_v2_state saw it, on Redis's clock.
public struct BreakerSnapshot: Sendable, Hashable {
    public var name: String
    /// False for a breaker that has never been used (or expired while idle): it reads as closed.
    public var exists: Bool
    public var state: BreakerState
    public var mode: BreakerMode
    public var generation: Int
    public var calls: Int
    public var failures: Int
    public var slowCalls: Int
    /// Rates as the library printed them (up to 4 significant digits).
    public var failureRate: String
    public var slowRate: String
    public var liveTrials: Int
    public var halfOpenPermits: Int
    public var retryAfterMs: Int
    /// Consecutive openings without a close in between (drives the backoff).
    public var opens: Int
    public var openUntil: Int
    public var modeBy: String
    public var modeWhy: String
    public var modeAt: Int
    /// When a forced mode lapses (unix ms), or 0 for never.
    public var modeUntil: Int
}

/// What an acquire decided, with the transitions it made.
public struct AcquireResult: Sendable, Hashable {
    public var decision: AcquireDecision
    public var generation: Int
    /// Event lines of the transitions this call made (already published and recorded).
    public var events: [String]
}

/// What a report did, with the transitions it made.
public struct ReportResult: Sendable, Hashable {
    public var state: BreakerState
    public var effect: ReportEffect
    public var generation: Int
    public var events: [String]
}

/// What a fold of outcomes did, and the breaker as it stands after it.
public struct FoldResult: Sendable, Hashable {
    public var state: BreakerState
    /// `counted`, `stale` (gathered in another generation) or `notCounted`.
    public var effect: ReportEffect
    public var generation: Int
    /// What a denied acquire would say now: 0 while an acquire would be permitted under `auto`.
    public var retryAfterMs: Int
    /// The operator's mode.
    public var mode: BreakerMode
    /// The breaker's effective slow_call_ms and permit_ttl_ms, for judging the caller's own permits.
    public var slowCallMs: Int
    public var permitTTLMs: Int
    /// True when this fold's id was applied already: nothing was applied now, and `effect` is what
    /// the first one did.
    public var duplicate: Bool
    /// Event lines of the transitions this fold made (already published and recorded).
    public var events: [String]
}

/// The breaker after an operator's action.
public struct ControlResult: Sendable, Hashable {
    public var state: BreakerState
    public var mode: BreakerMode
    public var generation: Int
    public var events: [String]
}
