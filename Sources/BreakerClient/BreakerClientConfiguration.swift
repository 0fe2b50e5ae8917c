import BreakerCore

/// What `run` does when no breakerd answers (every address unreachable, timed out or closed).
///
/// The same three choices breakerd itself offers when Redis cannot answer (`--degraded`).
public enum UnavailablePolicy: Sendable, Hashable {
    /// A breaker in this process per breaker name, with this policy, fed only by this process's own
    /// calls while breakerd is unavailable. Its knowledge is dropped once breakerd answers again.
    case local(BreakerPolicy)
    /// Every call goes ahead, and nothing is reported.
    case allow
    /// Every call is denied, with a retry-after of one second: the fallback runs, or `BreakerOpenError` is thrown.
    case deny
}

/// How a `BreakerClient` connects, and what `run` does by default.
public struct BreakerClientConfiguration: Sendable {
    /// breakerd processes to use, in order of preference: requests go to the first that is up, and
    /// an address whose connection fails is skipped until its backoff has passed.
    public var addresses: [BreakerAddress]
    /// AUTH user: nil sends `AUTH <password>` (user `default`, a replica); `admin` for operator commands.
    public var user: String?
    /// AUTH password; nil sends no AUTH.
    public var password: String?
    /// CLIENT SETNAME on every connection, so breakerd's history says who acted (`by=user@addr/name`).
    public var clientName: String?
    /// Connections per address; requests are spread over them and pipelined on each.
    public var connectionsPerAddress: Int
    /// The deadline of every request, from the call to its answer, connecting included.
    public var requestTimeout: Duration
    /// How long one connection attempt may take (within the request's deadline).
    public var connectTimeout: Duration
    /// An address marked down is retried after this, doubling on each failure up to `maxReconnectBackoff`.
    public var reconnectBackoff: Duration
    public var maxReconnectBackoff: Duration
    /// What `run` does when no breakerd answers.
    public var whenUnavailable: UnavailablePolicy
    /// Remember an open breaker's deny until its retry-after and deny locally meanwhile, as long as
    /// the client's event subscription is live (an event for the breaker forgets it at once).
    public var cachesOpenState: Bool
    /// How often an event subscription pings breakerd to find a dead connection.
    public var eventKeepAlive: Duration
    /// The outcome of an operation that threw, for `run`. By default every error is a FAILURE except
    /// `CancellationError` (the caller gave up: not the dependency's fault), which is IGNORE.
    public var classifyError: @Sendable (any Error) -> Outcome

    public init(
        addresses: [BreakerAddress],
        user: String? = nil,
        password: String? = nil,
        clientName: String? = nil,
        connectionsPerAddress: Int = 2,
        requestTimeout: Duration = .milliseconds(500),
        connectTimeout: Duration = .milliseconds(250),
        reconnectBackoff: Duration = .milliseconds(100),
        maxReconnectBackoff: Duration = .seconds(5),
        whenUnavailable: UnavailablePolicy = .local(BreakerPolicy()),
        cachesOpenState: Bool = true,
        eventKeepAlive: Duration = .seconds(5),
        classifyError: @escaping @Sendable (any Error) -> Outcome = BreakerClientConfiguration
            .defaultClassifyError
    ) {
        self.addresses = addresses
        self.user = user
        self.password = password
        self.clientName = clientName
        self.connectionsPerAddress = max(1, connectionsPerAddress)
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.reconnectBackoff = reconnectBackoff
        self.maxReconnectBackoff = maxReconnectBackoff
        self.whenUnavailable = whenUnavailable
        self.cachesOpenState = cachesOpenState
        self.eventKeepAlive = eventKeepAlive
        self.classifyError = classifyError
    }

    /// Every error is a FAILURE, except the caller's own cancellation, which is IGNORE.
    public static let defaultClassifyError: @Sendable (any Error) -> Outcome = { error in
        error is CancellationError ? .ignore : .failure
    }
}
