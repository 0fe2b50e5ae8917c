import BreakerCore
import BreakerStore
import Foundation

/// The body of GET /api/breakers.
struct BreakersDocument: Encodable {
    struct Breaker: Encodable {
        var name: String
        var exists: Bool
        var state: String
        var mode: String
        var mode_by: String
        var mode_why: String
        var mode_at: Int
        var mode_until: Int
        var generation: Int
        var calls: Int
        var failures: Int
        var slow: Int
        var failure_rate: Double
        var slow_rate: Double
        var trials: Int
        var permits: Int
        var retry_after_ms: Int
        var opens: Int
        var window_ms: Int?
        var min_calls: Int?
        var failure_rate_threshold: Double?
        /// Event lines, newest first.
        var history: [String]

        init(_ b: FleetView.Breaker) {
            let s = b.snapshot
            name = s.name
            exists = s.exists
            state = s.state.rawValue
            mode = s.mode.rawValue
            mode_by = s.modeBy
            mode_why = s.modeWhy
            mode_at = s.modeAt
            mode_until = s.modeUntil
            generation = s.generation
            calls = s.calls
            failures = s.failures
            slow = s.slowCalls
            failure_rate = Double(s.failureRate) ?? 0
            slow_rate = Double(s.slowRate) ?? 0
            trials = s.liveTrials
            permits = s.halfOpenPermits
            retry_after_ms = s.retryAfterMs
            opens = s.opens
            window_ms = b.policy?.windowMs
            min_calls = b.policy?.minCalls
            failure_rate_threshold = b.policy?.failureRate
            history = b.history
        }
    }

    var now_ms: Int
    var store: String
    var total: Int
    var truncated: Bool
    var breakers: [Breaker]
    /// Changes to the fleet default policy made through this process, newest first (memory only).
    var default_policy_changes: [String]

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }
}
