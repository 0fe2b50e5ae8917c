import BreakerCore
import BreakerStore

/// The one-line texts breakerd replies with, kept in one place so the protocol document and the
/// code cannot drift apart.
enum BreakerLines {
    /// `<breaker> <state> mode=.. gen=.. calls=.. failures=.. slow=.. failure_rate=.. slow_rate=..
    /// trials=<live>/<permits> retry_after_ms=..`, then `mode_by=.. mode_until=..` when a mode is forced.
    static func state(_ s: BreakerSnapshot) -> String {
        var line = "\(s.name) \(s.state.rawValue) mode=\(s.mode.rawValue) gen=\(s.generation) calls=\(s.calls)"
        line += " failures=\(s.failures) slow=\(s.slowCalls) failure_rate=\(s.failureRate) slow_rate=\(s.slowRate)"
        line += " trials=\(s.liveTrials)/\(s.halfOpenPermits) retry_after_ms=\(s.retryAfterMs)"
        if s.mode != .auto {
            line += " mode_by=\(s.modeBy.isEmpty ? "-" : s.modeBy) mode_until=\(s.modeUntil)"
        }
        return line
    }

    /// `key=value key=value ...` in the order the policy keys are documented.
    static func policy(_ p: BreakerPolicy) -> String {
        p.values.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// `OK <state>`, then a word when the outcome counted nothing because of its permit: `stale`
    /// (issued in an earlier generation) or `expired` (already reported, or its lease ran out).
    static func report(state: BreakerState, effect: ReportEffect) -> String {
        switch effect {
        case .stale, .expired: return "OK \(state.rawValue) \(effect.rawValue)"
        case .counted, .notCounted, .ignored: return "OK \(state.rawValue)"
        }
    }

    static func acquire(_ d: AcquireDecision, degraded: Bool = false) -> String {
        let suffix = degraded ? " degraded" : ""
        switch d {
        case .permit(let permit, let state): return "PERMIT \(permit) \(state.rawValue)\(suffix)"
        case .deny(let state, let retry): return "DENY \(state.rawValue) \(retry)\(suffix)"
        }
    }
}
