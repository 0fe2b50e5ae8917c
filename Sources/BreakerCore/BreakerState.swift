/// Where a breaker's state machine stands.
public enum BreakerState: String, Sendable, Hashable, CaseIterable {
    case closed
    case open
    case halfOpen = "half_open"
}

/// An operator's override of the state machine.
public enum BreakerMode: String, Sendable, Hashable, CaseIterable {
    /// The state machine decides.
    case auto
    /// Every acquire is denied.
    case forcedOpen = "forced_open"
    /// Every acquire is permitted and outcomes count nothing.
    case forcedClosed = "forced_closed"
    /// The state machine runs and records its transitions, but every acquire is permitted.
    case metricsOnly = "metrics_only"
}

/// What a caller reports about one call.
public enum Outcome: String, Sendable, Hashable, CaseIterable {
    case success = "SUCCESS"
    case failure = "FAILURE"
    /// Counts nothing: the call failed through the caller's own fault (a 4xx, say).
    case ignore = "IGNORE"
}

/// The answer to an acquire.
public enum AcquireDecision: Sendable, Hashable {
    case permit(permit: String, state: BreakerState)
    case deny(state: BreakerState, retryAfterMs: Int)

    public var state: BreakerState {
        switch self {
        case .permit(_, let s), .deny(let s, _): return s
        }
    }
}

/// What a report did with its outcome.
public enum ReportEffect: String, Sendable, Hashable {
    /// Added to the window, or to the half-open trial count.
    case counted
    /// The permit was issued in an earlier generation: acknowledged, counts nothing.
    case stale
    /// The permit was already reported, or its lease ran out: counts nothing more.
    case expired
    /// A forced mode or the breaker's state meant the outcome is not counted.
    case notCounted = "not_counted"
    /// The caller said IGNORE.
    case ignored
}
