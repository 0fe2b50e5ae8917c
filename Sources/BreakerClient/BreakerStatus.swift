import BreakerCore

/// A breaker as STATE and LIST describe it.
public struct BreakerStatus: Sendable, Hashable {
    public var name: String
    public var state: BreakerState
    public var mode: BreakerMode
    public var generation: Int
    /// Calls, failures and slow calls in the current window.
    public var calls: Int
    public var failures: Int
    public var slowCalls: Int
    public var failureRate: Double
    public var slowRate: Double
    /// Half-open trial permits live now, and how many may be live at once.
    public var liveTrials: Int
    public var halfOpenPermits: Int
    /// Milliseconds until an acquire may be permitted (0 when it would be now).
    public var retryAfterMs: Int
    /// Who forced the mode, and until when (unix ms, 0 for no expiry); nil in `auto`.
    public var modeBy: String?
    public var modeUntilMs: Int?
    /// The line as breakerd sent it.
    public var line: String

    /// Reads `<breaker> <state> mode=.. gen=.. calls=.. ...`; words it does not know are ignored.
    public init(parsing line: String) throws(BreakerClientError) {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count >= 2, let state = BreakerState(rawValue: String(words[1])) else {
            throw .unexpected(line)
        }
        var fields: [Substring: Substring] = [:]
        for word in words.dropFirst(2) {
            guard let eq = word.firstIndex(of: "=") else { continue }
            fields[word[..<eq]] = word[word.index(after: eq)...]
        }
        func int(_ key: Substring) -> Int { fields[key].flatMap { Int($0) } ?? 0 }
        func double(_ key: Substring) -> Double { fields[key].flatMap { Double($0) } ?? 0 }
        self.name = String(words[0])
        self.state = state
        self.mode = fields["mode"].flatMap { BreakerMode(rawValue: String($0)) } ?? .auto
        self.generation = int("gen")
        self.calls = int("calls")
        self.failures = int("failures")
        self.slowCalls = int("slow")
        self.failureRate = double("failure_rate")
        self.slowRate = double("slow_rate")
        let trials = fields["trials"]?.split(separator: "/") ?? []
        self.liveTrials = trials.first.flatMap { Int($0) } ?? 0
        self.halfOpenPermits = trials.count > 1 ? Int(trials[1]) ?? 0 : 0
        self.retryAfterMs = int("retry_after_ms")
        self.modeBy = fields["mode_by"].map(String.init)
        self.modeUntilMs = fields["mode_until"].flatMap { Int($0) }
        self.line = line
    }
}

extension BreakerEvent {
    /// Parses a HISTORY or SUBSCRIBE line; a line of another shape is `.unexpected`.
    public init(parsing line: String) throws(BreakerClientError) {
        guard let event = BreakerEvent(line: line) else { throw .unexpected(line) }
        self = event
    }
}
