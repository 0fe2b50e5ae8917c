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
        /// The state a call would find now: `half_open` once an open breaker's open time is over,
        /// though Redis keeps `open` until the next acquire.
        var effective_state: String
        /// The figures that opened it, from its newest `->open` event line, while it is not closed
        /// (the window itself is cleared at a trip).
        var opened_by: OpenedBy?
        /// The status page's trend, oldest first: unix ms, calls in the window, failure rate, and
        /// denies this process answered since the sample before.
        var trend: Trend

        struct OpenedBy: Encodable {
            var at: Int
            var reason: String
            var calls: Int?
            var failures: Int?
            var failure_rate: Double?
            var slow: Int?
            var slow_rate: Double?
            var threshold: Double?
            var by: String?
            var why: String?
        }

        struct Trend: Encodable {
            var interval_ms: Int
            var at: [Int]
            var calls: [Int]
            var failure_rate: [Double]
            var denies: [Int]
            var state: [String]
        }

        init(_ b: FleetView.Breaker, samples: [BreakerSamples.Sample] = [], intervalMs: Int = 0) {
            let s = b.snapshot
            name = s.name
            exists = s.exists
            state = s.state.rawValue
            effective_state = b.effectiveState.rawValue
            opened_by = s.state == .closed ? nil : Self.openedBy(b.history)
            trend = Trend(
                interval_ms: intervalMs, at: samples.map(\.at), calls: samples.map(\.calls),
                failure_rate: samples.map(\.failureRate), denies: samples.map(\.denies),
                state: samples.map(\.state.rawValue))
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

        /// The newest event line that opened the breaker, as figures: `<name> <from>->open gen=..
        /// at=.. reason=.. k=v ... [by=.. why=<text>]`.
        static func openedBy(_ history: [String]) -> OpenedBy? {
            for line in history {
                var text = Substring(line)
                var why: String?
                if let r = text.range(of: " why=") {
                    why = String(text[r.upperBound...])
                    text = text[..<r.lowerBound]
                }
                let words = text.split(separator: " ")
                guard words.count >= 2, words[1].hasSuffix("->open") else { continue }
                var kv: [String: String] = [:]
                for w in words.dropFirst(2) {
                    if let eq = w.firstIndex(of: "=") { kv[String(w[..<eq])] = String(w[w.index(after: eq)...]) }
                }
                return OpenedBy(
                    at: Int(kv["at"] ?? "") ?? 0, reason: kv["reason"] ?? "", calls: kv["calls"].flatMap { Int($0) },
                    failures: kv["failures"].flatMap { Int($0) }, failure_rate: kv["failure_rate"].flatMap { Double($0) },
                    slow: kv["slow"].flatMap { Int($0) }, slow_rate: kv["slow_rate"].flatMap { Double($0) },
                    threshold: kv["threshold"].flatMap { Double($0) }, by: kv["by"], why: why)
            }
            return nil
        }
    }

    var now_ms: Int
    var store: String
    /// While the store is down: when the breakers below were last read (unix ms), else nil.
    var as_of_ms: Int?
    /// While the store is down: why the read failed.
    var error: String?
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
