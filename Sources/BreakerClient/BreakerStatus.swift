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

/// One transition, mode change or config change, as HISTORY and SUBSCRIBE carry it:
/// `<breaker> <from>-><to> gen=<n> at=<unix ms> reason=<code> [figures...] [by=<actor> why=<text>]`.
public struct BreakerEvent: Sendable, Hashable {
    public var breaker: String
    public var from: BreakerState
    public var to: BreakerState
    public var generation: Int
    /// Unix milliseconds, on Redis's clock.
    public var atMs: Int
    public var reason: String
    /// Every `key=value` after the breaker and the arrow, in order (`gen`, `at`, `reason` included);
    /// `why` is last and keeps its spaces.
    public var fields: [Field]
    /// The line as breakerd sent it.
    public var line: String

    public struct Field: Sendable, Hashable {
        public var key: String
        public var value: String
    }

    /// The value of `key`, if the line has it.
    public subscript(key: String) -> String? { fields.first { $0.key == key }?.value }

    public init(parsing line: String) throws(BreakerClientError) {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard words.count >= 2 else { throw .unexpected(line) }
        let arrow = words[1].split(separator: "-", maxSplits: 1)
        guard arrow.count == 2, arrow[1].hasPrefix(">"),
            let from = BreakerState(rawValue: String(arrow[0])),
            let to = BreakerState(rawValue: String(arrow[1].dropFirst()))
        else { throw .unexpected(line) }
        var fields: [Field] = []
        var rest = words.count > 2 ? words[2] : ""
        while !rest.isEmpty {
            // `why=` is the operator's free text and runs to the end of the line.
            if rest.hasPrefix("why=") {
                fields.append(Field(key: "why", value: String(rest.dropFirst(4))))
                break
            }
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            let word = rest[..<end]
            if let eq = word.firstIndex(of: "=") {
                fields.append(
                    Field(key: String(word[..<eq]), value: String(word[word.index(after: eq)...])))
            }
            rest = rest[end...].drop { $0 == " " }
        }
        self.breaker = String(words[0])
        self.from = from
        self.to = to
        self.fields = fields
        self.generation = fields.first { $0.key == "gen" }.flatMap { Int($0.value) } ?? 0
        self.atMs = fields.first { $0.key == "at" }.flatMap { Int($0.value) } ?? 0
        self.reason = fields.first { $0.key == "reason" }?.value ?? ""
        self.line = line
    }
}
