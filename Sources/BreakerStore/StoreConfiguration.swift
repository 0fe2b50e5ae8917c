import BreakerCore

/// How the store names its keys and how long it keeps them.
public struct StoreConfiguration: Sendable {
    /// Put before every key, so deployments sharing one Redis never collide.
    public var keyPrefix: String
    /// The policy of breakers (and keys) no operator has set; `CONFIG SET default` overrides it
    /// fleet-wide through Redis.
    public var defaultPolicy: BreakerPolicy
    /// A breaker's state, permits and history expire after this long without use.
    public var idleTTLMs: Int
    /// How many events each breaker's history keeps.
    public var historyLength: Int
    /// How often the fleet-wide default policy is read back from Redis.
    public var defaultsRefreshMs: Int

    public init(
        keyPrefix: String = "breakerd",
        defaultPolicy: BreakerPolicy = BreakerPolicy(),
        idleTTLMs: Int = 7 * 86_400_000,
        historyLength: Int = 100,
        defaultsRefreshMs: Int = 1000
    ) {
        self.keyPrefix = keyPrefix
        self.defaultPolicy = defaultPolicy
        self.idleTTLMs = idleTTLMs
        self.historyLength = historyLength
        self.defaultsRefreshMs = defaultsRefreshMs
    }

    /// The pub/sub channel every event goes to; `<channel>:<name>` carries one breaker's.
    public var eventsChannel: String { "\(keyPrefix):events" }
    /// The hash holding the fleet-wide default policy overrides.
    public var defaultPolicyKey: String { "\(keyPrefix):default" }
}
