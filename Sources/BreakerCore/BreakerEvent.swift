/// The one definition of a breaker event line, read by the server, the client and the HTTP layer.
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

    /// Parses a HISTORY or SUBSCRIBE line; nil for a line of another shape.
    public init?(line: String) {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard words.count >= 2 else { return nil }
        let arrow = words[1].split(separator: "-", maxSplits: 1)
        guard arrow.count == 2, arrow[1].hasPrefix(">"),
            let from = BreakerState(rawValue: String(arrow[0])),
            let to = BreakerState(rawValue: String(arrow[1].dropFirst()))
        else { return nil }
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

    /// An operator's mode change the line records (`mode=<was>-><now>`), if any.
    public var modeChange: (from: BreakerMode, to: BreakerMode)? {
        guard let value = self["mode"] else { return nil }
        let parts = value.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, parts[1].hasPrefix(">"),
            let from = BreakerMode(rawValue: String(parts[0])), let to = BreakerMode(rawValue: String(parts[1].dropFirst()))
        else { return nil }
        return (from, to)
    }

    /// The value of `key` as a whole number, if the line has it.
    public func int(_ key: String) -> Int? { self[key].flatMap { Int($0) } }
}
