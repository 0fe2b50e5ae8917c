import Hiredis

extension RedisClient.Configuration {
    /// For a test that is not about deadlines: connects and answers may take seconds. The parallel
    /// pass runs Chromium, Prometheus, breakerd processes and a dozen redis-servers on two cores,
    /// and CI has seen a loopback connect miss 1 s and a FUNCTION FLUSH miss 500 ms there.
    public static func patient(_ endpoint: RedisEndpoint) -> Self {
        .init(endpoint: endpoint, connectTimeoutMs: 10_000, deadlineMs: 10_000)
    }
}
