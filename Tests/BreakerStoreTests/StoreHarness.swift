import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// A store on the shared test Redis (or the one `endpoint` names) with a key prefix of its own, and
/// helpers that keep tests short. A test that changes what is global to a Redis (FUNCTION FLUSH,
/// CONFIG SET) passes a private server's endpoint: the shared one serves the parallel tests.
struct StoreHarness {
    let store: BreakerStore
    let client: RedisClient
    let prefix: String

    init(prefix: String = TestRedis.uniquePrefix("store"), policy: [(String, String)] = [], idleTTLMs: Int = 7 * 86_400_000, historyLength: Int = 100, endpoint: RedisEndpoint = TestRedis.endpoint) throws {
        self.prefix = prefix
        client = RedisClient(configuration: .patient(endpoint))
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

    /// The breaker's state record as the library stores it (see breakerd.lua): the header's fields by
    /// name, and every bucket of the window, the current one (kept in the header) included.
    func stateRecord(_ b: String = "payments") async throws -> StateRecord {
        guard case .string(let bytes) = try await redis("GET", "\(prefix):{\(b)}:s") else {
            throw TestRedisError("no state record for \(b)")
        }
        return StateRecord(bytes)
    }

    func shutdown() { client.shutdown() }
}

/// A decoded state record: 18 header doubles, the policy block, then the ring of buckets.
struct StateRecord {
    static let headerFields = [
        "seq", "on", "calls", "fails", "slows", "bc", "bf", "bw",
        "state", "gen", "head", "nb", "bms", "open_until", "opens", "oks", "cf", "ex",
    ]
    static let ringOffset = 328

    let header: [String: Double]
    /// Every bucket: the header's current one first, then the ring's slots (missing slots are empty).
    let buckets: [(calls: Double, failures: Double, slow: Double)]
    let byteCount: Int

    init(_ bytes: [UInt8]) {
        func double(at offset: Int) -> Double {
            guard offset + 8 <= bytes.count else { return 0 }
            var bits: UInt64 = 0
            for i in 0..<8 { bits |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            return Double(bitPattern: bits)
        }
        var header: [String: Double] = [:]
        for (i, name) in Self.headerFields.enumerated() { header[name] = double(at: 8 * i) }
        self.header = header
        var buckets = [(header["bc"] ?? 0, header["bf"] ?? 0, header["bw"] ?? 0)]
        var offset = Self.ringOffset
        while offset + 24 <= bytes.count {
            buckets.append((double(at: offset), double(at: offset + 8), double(at: offset + 16)))
            offset += 24
        }
        self.buckets = buckets
        byteCount = bytes.count
    }
}

/// A fixed starting instant for tests that inject time (a whole multiple of every bucket length used).
let t0 = 1_800_000_000_000
