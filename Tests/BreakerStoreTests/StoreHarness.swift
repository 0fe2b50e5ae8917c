import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// A store on the shared test Redis with a key prefix of its own, and helpers that keep tests short.
struct StoreHarness {
    let store: BreakerStore
    let client: RedisClient
    let prefix: String

    init(prefix: String = TestRedis.uniquePrefix("store"), policy: [(String, String)] = [], idleTTLMs: Int = 7 * 86_400_000, historyLength: Int = 100) throws {
        self.prefix = prefix
        client = RedisClient(configuration: .init(endpoint: TestRedis.endpoint, connections: 2, deadlineMs: 2000))
        let p = try BreakerPolicy().applying(policy)
        store = BreakerStore(
            client: client,
            configuration: StoreConfiguration(keyPrefix: prefix, defaultPolicy: p, idleTTLMs: idleTTLMs, historyLength: historyLength))
    }

    func name(_ s: String = "payments") -> BreakerName { try! BreakerName(s) }

    /// Acquires and expects a permit; returns it.
    func permit(_ b: String = "payments", at now: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let r = try await store.acquire(name(b), now: now)
        guard case .permit(let permit, _) = r.decision else {
            Issue.record("expected a permit, got \(r.decision)", sourceLocation: sourceLocation)
            return ""
        }
        return permit
    }

    /// Acquires and reports `outcome` at the same instant.
    @discardableResult
    func call(_ outcome: Outcome, at now: Int, latencyMs: Int? = nil, breaker b: String = "payments") async throws -> ReportResult {
        let p = try await permit(b, at: now)
        return try await store.report(name(b), permit: p, outcome: outcome, latencyMs: latencyMs, now: now)
    }

    func redis(_ args: String...) async throws -> RedisReply {
        try await client.send(args)
    }

    func shutdown() { client.shutdown() }
}

/// A fixed starting instant for tests that inject time (a whole multiple of every bucket length used).
let t0 = 1_800_000_000_000
