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
    /// The bearer token every path but /healthz needs (`--http-token`); nil leaves HTTP open, which
    /// `validate()` allows on loopback only.
    public var token: String?
    /// With a token set, basic auth as `admin` with this password is let in too (a browser's way).
    public var adminPassword: String?
    /// A token that opens /metrics only (`--metrics-token`), for a scraper that should not read
    /// the rest.
    public var metricsToken: String?
    /// /metrics needs no credentials at all (`--metrics-public`).
    public var metricsPublic: Bool
    /// How often the status page's charts take a sample of every breaker.
    public var sampleInterval: Duration
    /// How many samples each chart keeps (with the interval: how far back it reaches).
    public var sampleCount: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 7421,
        maxConnections: Int = 256,
        maxEventStreams: Int = 64,
        maxBreakers: Int = 1000,
        historyCount: Int = 10,
        idleTimeout: Duration = .seconds(60),
        heartbeat: Duration = .seconds(15),
        token: String? = nil,
        adminPassword: String? = nil,
        metricsToken: String? = nil,
        metricsPublic: Bool = false,
        sampleInterval: Duration = .seconds(10),
        sampleCount: Int = 60
    ) {
        self.host = host
        self.port = port
        self.maxConnections = maxConnections
        self.maxEventStreams = maxEventStreams
        self.maxBreakers = maxBreakers
        self.historyCount = historyCount
        self.idleTimeout = idleTimeout
        self.heartbeat = heartbeat
        self.token = token
        self.adminPassword = adminPassword
        self.metricsToken = metricsToken
        self.metricsPublic = metricsPublic
        self.sampleInterval = sampleInterval
        self.sampleCount = sampleCount
    }

    /// Whether `host` is a loopback address, reachable from this machine only.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// A reason this configuration must not be served; nil when it may. The operators' plane shows
    /// every breaker's name, policy and who forced what and why: beyond loopback it needs a token.
    public func problem() -> String? {
        for (name, value) in [("--http-token", token), ("--metrics-token", metricsToken)] {
            if let value, value.isEmpty { return "\(name) is empty" }
        }
        if !Self.isLoopback(host) && token == nil {
            return "--http \(host):\(port) is beyond loopback: set --http-token (or BREAKERD_HTTP_TOKEN) to lock it, or bind 127.0.0.1"
        }
        if metricsPublic && metricsToken != nil { return "--metrics-public and --metrics-token exclude each other" }
        if sampleCount < 2 { return "sampleCount must be at least 2" }
        if sampleInterval <= .zero { return "sampleInterval must be positive" }
        return nil
    }
}
