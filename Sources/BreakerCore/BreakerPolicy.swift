/// How one breaker decides: its rolling window, thresholds, open time and half-open trials.
/// The keys and defaults are the ones operators type in `CONFIG SET`.
public struct BreakerPolicy: Sendable, Hashable {
    public var windowMs: Int = 30_000
    public var buckets: Int = 10
    public var failureRate: Double = 0.5
    public var minCalls: Int = 20
    public var slowCallMs: Int = 0
    public var slowCallRate: Double = 1.0
    public var openMs: Int = 30_000
    public var openBackoff: Double = 2
    public var maxOpenMs: Int = 300_000
    public var halfOpenPermits: Int = 1
    public var successThreshold: Int = 1
    public var permitTTLMs: Int = 10_000

    public init() {}

    /// Every key, in the order the Lua scripts receive them in ARGV.
    public static let keys: [String] = [
        "window_ms", "buckets", "failure_rate", "min_calls", "slow_call_ms", "slow_call_rate",
        "open_ms", "open_backoff", "max_open_ms", "half_open_permits", "success_threshold", "permit_ttl_ms",
    ]

    /// The most buckets a window may have: each bucket is 24 bytes of the breaker's record in Redis
    /// (docs/ENGINE.md), and a window's buckets are what a state read walks.
    public static let maxBuckets = 30

    /// The value of `key` as operators see it; nil for an unknown key.
    public func value(of key: String) -> String? {
        switch key {
        case "window_ms": return String(windowMs)
        case "buckets": return String(buckets)
        case "failure_rate": return Self.format(failureRate)
        case "min_calls": return String(minCalls)
        case "slow_call_ms": return String(slowCallMs)
        case "slow_call_rate": return Self.format(slowCallRate)
        case "open_ms": return String(openMs)
        case "open_backoff": return Self.format(openBackoff)
        case "max_open_ms": return String(maxOpenMs)
        case "half_open_permits": return String(halfOpenPermits)
        case "success_threshold": return String(successThreshold)
        case "permit_ttl_ms": return String(permitTTLMs)
        default: return nil
        }
    }

    /// Every key with its value, in `keys` order.
    public var values: [(key: String, value: String)] {
        Self.keys.map { ($0, value(of: $0)!) }
    }

    /// Sets one key from its text, checking the value's own range (cross-key rules: `validate()`).
    public mutating func set(_ key: String, to text: String) throws(PolicyError) {
        func int(_ range: ClosedRange<Int>) throws(PolicyError) -> Int {
            guard let v = Int(text.trimmingSpaces), range.contains(v) else {
                throw PolicyError(key: key, value: text, reason: "must be a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        func rate(allowZero: Bool = false) throws(PolicyError) -> Double {
            guard let v = Double(text.trimmingSpaces), v.isFinite, allowZero ? v >= 0 : v > 0, v <= 1 else {
                throw PolicyError(key: key, value: text, reason: allowZero ? "must be a number from 0 to 1" : "must be a number above 0 and at most 1")
            }
            return v
        }
        let day = 86_400_000
        switch key {
        case "window_ms": windowMs = try int(100...day)
        case "buckets": buckets = try int(1...Self.maxBuckets)
        case "failure_rate": failureRate = try rate()
        case "min_calls": minCalls = try int(1...1_000_000_000)
        case "slow_call_ms": slowCallMs = try int(0...day)
        case "slow_call_rate": slowCallRate = try rate()
        case "open_ms": openMs = try int(1...day)
        case "open_backoff":
            guard let v = Double(text.trimmingSpaces), v.isFinite, v >= 1, v <= 100 else {
                throw PolicyError(key: key, value: text, reason: "must be a number from 1 to 100")
            }
            openBackoff = v
        case "max_open_ms": maxOpenMs = try int(1...(7 * day))
        case "half_open_permits": halfOpenPermits = try int(1...10_000)
        case "success_threshold": successThreshold = try int(1...10_000)
        case "permit_ttl_ms": permitTTLMs = try int(1...day)
        default:
            throw PolicyError(key: key, value: text, reason: "is not a policy key (keys: \(Self.keys.joined(separator: ", ")))")
        }
    }

    /// Checks the rules that tie keys together.
    public func validate() throws(PolicyError) {
        if maxOpenMs < openMs {
            throw PolicyError(key: "max_open_ms", value: String(maxOpenMs), reason: "must be at least open_ms (\(openMs))")
        }
        if windowMs / buckets < 10 {
            throw PolicyError(key: "buckets", value: String(buckets), reason: "makes buckets shorter than 10 ms for window_ms \(windowMs)")
        }
    }

    /// The policy with `overrides` applied over it, validated.
    public func applying(_ overrides: [(key: String, value: String)]) throws(PolicyError) -> BreakerPolicy {
        var p = self
        for (k, v) in overrides { try p.set(k, to: v) }
        try p.validate()
        return p
    }

    /// The length of one bucket of the window.
    public var bucketMs: Int { windowMs / buckets }

    /// How long the breaker stays open on its `opens`-th consecutive opening (1 for the first).
    /// Multiplies step by step, exactly as the Lua scripts do, so both give the same milliseconds.
    public func openDuration(opens: Int) -> Int {
        var d = Double(openMs)
        var i = 1
        while i < opens && d < Double(maxOpenMs) {
            d *= openBackoff
            i += 1
        }
        return Int(min(d, Double(maxOpenMs)))
    }

    /// A rate as scripts and event lines print it: shortest text that reads back the same.
    public static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return String(d)
    }
}

/// A policy key with a value it cannot take.
public struct PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var reason: String

    public init(key: String, value: String, reason: String) {
        self.key = key
        self.value = value
        self.reason = reason
    }

    public var description: String { "\(key)=\(value) \(reason)" }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
