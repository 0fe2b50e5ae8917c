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
    /// A connection that begins a frame and does not finish it within this many ms is closed
    /// (0: never), so half-sent requests cannot hold connection slots forever.
    public var requestTimeoutMs: Int
    /// A connection with nothing in flight and no subscription, silent for this many seconds, is
    /// closed (0, the default: never), as Redis's `timeout`.
    public var idleTimeoutSeconds: Int
    /// The most connections from one peer address at once (0, the default: no limit).
    public var maxClientsPerPeer: Int
    /// Connections admitted past `maxClients` for the admin role alone: such a connection must AUTH
    /// as admin within `requestTimeoutMs`, and is served nothing else. Only with an admin password.
    public var adminReservedClients: Int
    /// The most requests of one connection running at once; the rest wait their turn.
    public var maxInFlightPerConnection: Int
    /// After QUIT or a protocol error, how long the input is drained after the output side is shut
    /// (so replies already written are not lost to a reset).
    public var lingerMs: Int

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
        consistency: ConsistencyMode = .strict,
        requestTimeoutMs: Int = 5000,
        idleTimeoutSeconds: Int = 0,
        maxClientsPerPeer: Int = 0,
        adminReservedClients: Int = 16,
        maxInFlightPerConnection: Int = 64,
        lingerMs: Int = 2000
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
        self.requestTimeoutMs = max(0, requestTimeoutMs)
        self.idleTimeoutSeconds = max(0, idleTimeoutSeconds)
        self.maxClientsPerPeer = max(0, maxClientsPerPeer)
        self.adminReservedClients = max(0, adminReservedClients)
        self.maxInFlightPerConnection = max(1, maxInFlightPerConnection)
        self.lingerMs = max(0, lingerMs)
    }

    /// True when any secret is configured, so clients must AUTH.
    public var hasSecrets: Bool { password != nil || adminPassword != nil }
}
