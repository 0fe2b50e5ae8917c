import BreakerCore

/// A request to breakerd that did not get a usable answer.
///
/// `code` says which kind: `unreachable`, `timeout` and `connectionClosed` mean no breakerd answered
/// (what `run` treats as "breakerd unavailable"); `refused` is an error reply (`-ERR`, `-NOAUTH`,
/// `-WRONGPASS`, `-NOPERM`, ...), with the reply's first word in `replyCode`.
public struct BreakerClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; a struct of constants rather than an enum, so kinds can be added later.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case unreachable, timeout, connectionClosed, refused, unexpectedReply, invalidAddress,
                shutDown
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No configured breakerd accepted a connection (or each is marked down and waiting out its backoff).
        public static let unreachable = Code(.unreachable)
        /// The request's deadline passed before its answer arrived.
        public static let timeout = Code(.timeout)
        /// The connection closed with the request unanswered.
        public static let connectionClosed = Code(.connectionClosed)
        /// breakerd answered with an error reply.
        public static let refused = Code(.refused)
        /// breakerd answered something this client cannot read.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// An address that is not `host:port`.
        public static let invalidAddress = Code(.invalidAddress)
        /// The client was shut down.
        public static let shutDown = Code(.shutDown)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// What went wrong, for people.
    public let message: String
    /// For `refused`: the error reply's code (`ERR`, `NOAUTH`, `WRONGPASS`, `NOPERM`, ...).
    public let replyCode: String?

    init(_ code: Code, _ message: String, replyCode: String? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    /// True when no breakerd gave an answer (unreachable, timed out or closed): the cases `run`
    /// answers with the configured `UnavailablePolicy`.
    public var isUnavailable: Bool {
        code == .unreachable || code == .timeout || code == .connectionClosed
    }

    public var description: String { "\(code): \(message)" }

    static func invalidAddress(_ text: String) -> Self {
        Self(.invalidAddress, "'\(text)' is not host:port")
    }

    static func refused(_ reply: String) -> Self {
        let word = reply.split(separator: " ", maxSplits: 1).first.map(String.init) ?? "ERR"
        return Self(.refused, reply, replyCode: word)
    }

    static func unexpected(_ what: String) -> Self {
        Self(.unexpectedReply, "unexpected reply: \(what.prefix(200))")
    }
}

/// `run` was denied and had no fallback: the breaker is open (or its half-open trials are taken).
public struct BreakerOpenError: Error, Sendable, Hashable, CustomStringConvertible {
    public let breaker: String
    /// The state the deny came with (`open` or `half_open`).
    public let state: BreakerState
    /// How long until a call may be permitted again.
    public let retryAfter: Duration
    /// Where the deny came from.
    public let source: DecisionSource

    public init(breaker: String, state: BreakerState, retryAfter: Duration, source: DecisionSource) {
        self.breaker = breaker
        self.state = state
        self.retryAfter = retryAfter
        self.source = source
    }

    public var description: String {
        "breaker '\(breaker)' is \(state.rawValue): retry after \(retryAfter.milliseconds) ms (\(source.rawValue))"
    }
}

/// Who made an acquire decision.
public enum DecisionSource: String, Sendable, Hashable {
    /// breakerd, from the shared state in Redis.
    case breakerd
    /// breakerd, answering from its own degraded policy while Redis could not (`... degraded`).
    case breakerdDegraded = "breakerd_degraded"
    /// This client, from a deny it remembers until its retry-after (no round trip).
    case openStateCache = "open_state_cache"
    /// This client, by its `UnavailablePolicy` while no breakerd answered.
    case unavailablePolicy = "unavailable_policy"
}

/// The operation given to `run` took longer than its timeout; it was cancelled and reported as FAILURE.
public struct BreakerOperationTimeout: Error, Sendable, Hashable, CustomStringConvertible {
    public let breaker: String
    public let timeout: Duration
    public var description: String {
        "the call through breaker '\(breaker)' took longer than \(timeout.milliseconds) ms"
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a sub-millisecond wait is not 0.
    var milliseconds: Int {
        let (s, atto) = components
        return Int(s) * 1000 + Int((atto + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
