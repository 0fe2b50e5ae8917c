/// How the operators' HTTP endpoint listens and how much it lets clients make it hold.
public struct HTTPConfiguration: Sendable {
    public var host: String
    /// 0 lets the kernel choose (tests); `BreakerHTTPServer.port` tells which it chose.
    public var port: Int
    /// The most HTTP connections open at once; the one over it gets 503 and is closed.
    public var maxConnections: Int
    /// The most /events streams open at once (each is also a connection); the one over gets 503.
    public var maxEventStreams: Int
    /// The most breakers one /metrics or /api/breakers read covers (by name order); the rest are
    /// counted in `breakerd_breakers` and `total` but not listed.
    public var maxBreakers: Int
    /// History lines per breaker in /api/breakers.
    public var historyCount: Int
    /// A connection that sends nothing for this long is closed (an event stream never is).
    public var idleTimeout: Duration
    /// An event stream gets a comment line this often, so proxies keep it and a gone peer is noticed.
    public var heartbeat: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 7421,
        maxConnections: Int = 256,
        maxEventStreams: Int = 64,
        maxBreakers: Int = 1000,
        historyCount: Int = 10,
        idleTimeout: Duration = .seconds(60),
        heartbeat: Duration = .seconds(15)
    ) {
        self.host = host
        self.port = port
        self.maxConnections = maxConnections
        self.maxEventStreams = maxEventStreams
        self.maxBreakers = maxBreakers
        self.historyCount = historyCount
        self.idleTimeout = idleTimeout
        self.heartbeat = heartbeat
    }
}
