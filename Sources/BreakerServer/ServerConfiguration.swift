import RESP

/// How ACQUIRE and REPORT reach the breakers' shared state in Redis.
public enum ConsistencyMode: Sendable, Hashable, CustomStringConvertible {
    /// Every ACQUIRE and every REPORT is one script in Redis: the state is exact at every call.
    case strict
    /// For speed: a breaker known closed gets permits from this process and their outcomes are
    /// folded into Redis once per `flushMs` per breaker, so a trip may come up to one flush
    /// interval (plus a round trip) later than in strict mode; a breaker known open is denied here
    /// until its retry-after. Half-open trials always go to Redis. See docs/PERFORMANCE.md.
    case batched(flushMs: Int)

    public var description: String {
        switch self {
        case .strict: return "strict"
        case .batched(let ms): return "batched(flush_ms=\(ms))"
        }
    }
}

/// How a breakerd server listens, whom it lets in and how much one client may make it hold.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 lets the kernel choose (tests); `BreakerServer.port` tells which it chose.
    public var port: Int
    /// The password of the `default` user (replicas: ACQUIRE, REPORT and reads). With a secret
    /// configured, every command but PING, HELLO, AUTH and QUIT needs AUTH first.
    public var password: String?
    /// The password of the `admin` user, who may also CONFIG SET, FORCE and RESET.
    public var adminPassword: String?
    /// The most connections served at once; the one over it is told so and closed.
    public var maxClients: Int
    /// The most bytes the decoder may buffer for one connection's unfinished frame.
    public var maxInputBufferBytes: Int
    /// A connection whose replies or messages not yet taken by the peer exceed this is closed
    /// (Redis's client-output-buffer-limit).
    public var maxOutputBytes: Int
    /// Reading from a peer pauses while this many of its requests wait for answers.
    public var maxPipelinedRequests: Int
    /// How ACQUIRE answers when the store is unavailable.
    public var degradedPolicy: DegradedPolicy
    /// The most breakers the `local` degraded policy models at once.
    public var maxLocalBreakers: Int
    /// Request framing limits (inline line length, argument count, bulk length).
    public var limits: RESPLimits
    /// Strict (the default) or batched.
    public var consistency: ConsistencyMode

    public init(
        host: String = "127.0.0.1",
        port: Int = 7420,
        password: String? = nil,
        adminPassword: String? = nil,
        maxClients: Int = 10_000,
        maxInputBufferBytes: Int = 1 << 20,
        maxOutputBytes: Int = 8 << 20,
        maxPipelinedRequests: Int = 256,
        degradedPolicy: DegradedPolicy = .local,
        maxLocalBreakers: Int = 10_000,
        limits: RESPLimits = RESPLimits(),
        consistency: ConsistencyMode = .strict
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.adminPassword = adminPassword
        self.maxClients = maxClients
        self.maxInputBufferBytes = maxInputBufferBytes
        self.maxOutputBytes = maxOutputBytes
        self.maxPipelinedRequests = maxPipelinedRequests
        self.degradedPolicy = degradedPolicy
        self.maxLocalBreakers = maxLocalBreakers
        self.limits = limits
        self.consistency = consistency
    }

    /// True when any secret is configured, so clients must AUTH.
    public var hasSecrets: Bool { password != nil || adminPassword != nil }
}
