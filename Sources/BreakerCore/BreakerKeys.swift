/// The Redis keys of one breaker. All share the hash tag `{name}`, so every script touching them
/// runs on one Redis Cluster slot; the prefix keeps deployments that share a Redis apart.
public struct BreakerKeys: Sendable, Hashable {
    /// State, generation, permit counter and rolling window (expires when idle).
    public let state: String
    /// Outstanding permits: member = permit sequence number, score = acquire time (ms).
    public let outstanding: String
    /// Half-open trial leases: member = permit sequence number, score = acquire time (ms).
    public let trials: String
    /// Capped history of event lines, newest first.
    public let history: String
    /// Operator settings: policy overrides and the forced mode (kept while the breaker is idle).
    public let config: String

    public init(prefix: String, name: BreakerName) {
        let base = "\(prefix):{\(name.value)}:"
        state = base + "s"
        outstanding = base + "o"
        trials = base + "t"
        history = base + "h"
        config = base + "c"
    }

    /// In the order every script takes them as KEYS[1...5].
    public var all: [String] { [state, outstanding, trials, history, config] }

    /// Checks a key prefix: non-empty, and free of the characters that mean something to hash tags
    /// and to SCAN's glob patterns.
    public static func validatePrefix(_ prefix: String) -> String? {
        if prefix.isEmpty || prefix.utf8.count > 64 { return "the key prefix must be 1 to 64 bytes" }
        for c in prefix.unicodeScalars where "{}*?[]\\ \r\n\t".unicodeScalars.contains(c) {
            return "the key prefix may not contain { } * ? [ ] \\ or white space"
        }
        return nil
    }
}
