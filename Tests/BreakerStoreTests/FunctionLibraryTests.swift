import BreakerCore
@testable import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// The function library (Lua/breakerd.lua) itself: keys arranged, a function called directly with
/// FCALL and an injected time, the reply and every key it leaves checked. Then how the store loads
/// it, the fold ids that make a fold apply once, and the replies of a wrong shape.
@Suite struct FunctionLibraryTests {
    static let small = BreakerRulesTests.small
    static let keySuffixes = ["s", "o", "t", "h", "c"]

    /// A harness with the library loaded, and FCALL of its functions the way the store calls them.
    struct Library {
        let h: StoreHarness

        init(policy: [(String, String)] = FunctionLibraryTests.small) async throws {
            h = try StoreHarness(policy: policy)
            try await h.store.loadLibrary()
        }

        func key(_ suffix: String, _ b: String = "payments") -> String { "\(h.prefix):{\(b)}:\(suffix)" }

        /// FCALL breakerd_v2_<function> with the breaker's five keys (six for a fold), ARGV[1..5]
        /// as the store passes them, then `args`.
        func fcall(_ function: String, at now: Int, _ args: String..., breaker b: String = "payments") async throws -> RedisReply {
            let policy = h.store.defaultPolicy().values.map(\.value).joined(separator: " ")
            let config = h.store.configuration
            var keys = FunctionLibraryTests.keySuffixes.map { key($0, b) }
            if function == "fold" { keys.append(key("f", b)) }
            let command = function == "state" ? "FCALL_RO" : "FCALL"
            return try await h.client.send(
                [command, "breakerd_v2_\(function)", String(keys.count)] + keys
                    + [String(now), policy, "\(config.idleTTLMs) \(config.historyLength)", config.eventsChannel, b] + args)
        }

        func exists(_ suffix: String) async throws -> Bool {
            try await h.redis("EXISTS", key(suffix)).int == 1
        }

        func zset(_ suffix: String) async throws -> [String] {
            try await h.redis("ZRANGE", key(suffix), "0", "-1", "WITHSCORES").elements?.compactMap(\.text) ?? []
        }
    }

    /// Every text in a reply, nested arrays flattened.
    static func flattened(_ reply: RedisReply) -> [String] {
        if let e = reply.elements { return e.flatMap(flattened) }
        return reply.text.map { [$0] } ?? []
    }

    /// A function's reply, one text, as its fields (one per line).
    static func strings(_ reply: RedisReply) -> [String] {
        guard case .string(let bytes) = reply else { return ["not one text: \(reply)"] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    // MARK: The functions, called directly

    @Test func anAcquireOfANewBreakerWritesItsRecordAndPermit() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        let reply = try await lib.fcall("acquire", at: t0 + 5)
        #expect(Self.strings(reply) == ["PERMIT", "closed", "0.1.\(t0 + 5)", "0", "0"])
        let record = try await lib.h.stateRecord()
        #expect(record.byteCount == StateRecord.ringOffset)
        #expect(record.header["seq"] == 1 && record.header["on"] == 1 && record.header["state"] == 0)
        #expect(record.header["gen"] == 0 && record.header["calls"] == 0)
        #expect(record.header["head"] == Double((t0 + 5) / 1000) && record.header["nb"] == 10 && record.header["bms"] == 1000)
        #expect(record.header["ex"] == Double(t0 + 5) && record.header["cf"] == 0)
        // The policy block: the seven values, then the text they came from.
        guard case .string(let bytes) = try await lib.h.redis("GET", lib.key("s")) else { throw TestRedisError("no record") }
        let text = lib.h.store.defaultPolicy().values.map(\.value).joined(separator: " ")
        #expect(Array(bytes[200..<(200 + text.utf8.count)]) == Array(text.utf8) && bytes[200 + text.utf8.count] == 0)
        #expect(try await lib.zset("o") == ["1", String(t0 + 5)])
        let ttl = try await lib.h.redis("PTTL", lib.key("o")).int ?? -3
        #expect(ttl > 0 && ttl <= 7 * 86_400_000)
        let recordTTL = try await lib.h.redis("PTTL", lib.key("s")).int ?? -3
        #expect(recordTTL > 0 && recordTTL <= 7 * 86_400_000)
        for suffix in ["t", "h", "c", "f"] { #expect(try await !lib.exists(suffix), "\(suffix)") }
    }

    @Test func aCountedReportRewritesOnlyTheWindowFields() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        _ = try await lib.fcall("acquire", at: t0)
        guard case .string(let before) = try await lib.h.redis("GET", lib.key("s")) else { throw TestRedisError("no record") }
        let reply = try await lib.fcall("report", at: t0 + 30, "0.1.\(t0)", "FAILURE", "")
        #expect(Self.strings(reply) == ["OK", "closed", "counted", "0"])
        guard case .string(let after) = try await lib.h.redis("GET", lib.key("s")) else { throw TestRedisError("no record") }
        // Bytes 8..63 (on, calls, fails, slows, bc, bf, bw) change; the rest is as it was.
        #expect(after.count == before.count)
        #expect(Array(after[0..<8]) == Array(before[0..<8]) && Array(after[64...]) == Array(before[64...]))
        let record = StateRecord(after)
        #expect(record.header["on"] == 0 && record.header["calls"] == 1 && record.header["fails"] == 1)
        #expect(record.header["bc"] == 1 && record.header["bf"] == 1 && record.header["bw"] == 0)
        #expect(try await !lib.exists("o"))
        // Reported again: expired, and nothing changes.
        let again = try await lib.fcall("report", at: t0 + 40, "0.1.\(t0)", "FAILURE", "")
        #expect(Self.strings(again) == ["OK", "closed", "expired", "0"])
        #expect(try await lib.h.redis("GET", lib.key("s")) == .string(after))
    }

    @Test func aTrippingReportOpensPublishesAndRecords() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        for i in 0..<4 { _ = try await lib.fcall("acquire", at: t0 + i) }
        for i in 0..<3 {
            #expect(Self.strings(try await lib.fcall("report", at: t0 + 10, "0.\(i + 1).\(t0 + i)", "FAILURE", "")) == ["OK", "closed", "counted", "0"])
        }
        let reply = Self.strings(try await lib.fcall("report", at: t0 + 20, "0.4.\(t0 + 3)", "FAILURE", ""))
        let line = "payments closed->open gen=1 at=\(t0 + 20) reason=failure_rate failure_rate=1 threshold=0.5 calls=4 failures=4 open_ms=1000 opens=1"
        #expect(reply == ["OK", "open", "counted", "1", line])
        let record = try await lib.h.stateRecord()
        #expect(record.header["state"] == 1 && record.header["gen"] == 1 && record.header["opens"] == 1)
        #expect(record.header["open_until"] == Double(t0 + 1020))
        #expect(record.header["calls"] == 0 && record.buckets.allSatisfy { $0.calls == 0 })
        #expect(try await lib.h.redis("LRANGE", lib.key("h"), "0", "-1").elements?.compactMap(\.text) == [line])
        let historyTTL = try await lib.h.redis("PTTL", lib.key("h")).int ?? -3
        #expect(historyTTL > 0)
        // Open: an acquire denies until open_until and writes nothing.
        guard case .string(let open) = try await lib.h.redis("GET", lib.key("s")) else { throw TestRedisError("no record") }
        #expect(Self.strings(try await lib.fcall("acquire", at: t0 + 520)) == ["DENY", "open", "", "500", "1"])
        #expect(try await lib.h.redis("GET", lib.key("s")) == .string(open))
        // Time up: half-open, one trial permit in the trials zset.
        let trial = Self.strings(try await lib.fcall("acquire", at: t0 + 1020))
        #expect(trial.prefix(5) == ["PERMIT", "half_open", "2.5.\(t0 + 1020)", "0", "2"])
        #expect(trial.dropFirst(5).first?.hasPrefix("payments open->half_open gen=2 at=\(t0 + 1020) reason=open_elapsed") == true)
        #expect(try await lib.zset("t") == ["5", String(t0 + 1020)])
    }

    /// Every 16th permit also forgets the outstanding permits whose lease ran out.
    @Test func everySixteenthPermitPrunesLapsedPermits() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        for i in 0..<15 { _ = try await lib.fcall("acquire", at: t0 + i) }
        #expect(try await lib.zset("o").count == 30)
        #expect(try await lib.h.stateRecord().header["on"] == 15)
        // permit_ttl_ms is 5000: at +6000 all fifteen have lapsed; the 16th permit drops them.
        let reply = Self.strings(try await lib.fcall("acquire", at: t0 + 6000))
        #expect(reply == ["PERMIT", "closed", "0.16.\(t0 + 6000)", "0", "0"])
        #expect(try await lib.zset("o") == ["16", String(t0 + 6000)])
        let record = try await lib.h.stateRecord()
        #expect(record.header["seq"] == 16 && record.header["on"] == 1)
        // The 17th prunes nothing.
        _ = try await lib.fcall("acquire", at: t0 + 6001)
        #expect(try await lib.zset("o").count == 4)
    }

    @Test func theStateFunctionReadsAndWritesNothing() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        let fresh = Self.strings(try await lib.fcall("state", at: t0))
        #expect(fresh.count == 36 && fresh[0] == "exists" && fresh[1] == "0")
        for suffix in Self.keySuffixes { #expect(try await !lib.exists(suffix), "\(suffix)") }
        _ = try await lib.fcall("acquire", at: t0)
        _ = try await lib.fcall("report", at: t0, "0.1.\(t0)", "SUCCESS", "")
        let pairs = Self.strings(try await lib.fcall("state", at: t0 + 1))
        let fields = Dictionary(uniqueKeysWithValues: stride(from: 0, to: pairs.count, by: 2).map { (pairs[$0], pairs[$0 + 1]) })
        #expect(fields["exists"] == "1" && fields["state"] == "closed" && fields["calls"] == "1" && fields["failures"] == "0")
        // Registered no-writes: FCALL_RO runs it (the helper uses FCALL_RO), and not the others.
        let refused = try await lib.h.client.send(
            ["FCALL_RO", "breakerd_v2_acquire", "5"] + Self.keySuffixes.map { lib.key($0) } + [String(t0), "", "", "", ""])
        #expect(refused.errorMessage?.contains("write flag") == true, "\(refused)")
    }

    @Test func badArgumentsAreErrorsThatSayWhich() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        #expect(try await lib.fcall("report", at: t0, "0.1.\(t0)", "MAYBE", "").errorMessage == "BAD_OUTCOME MAYBE")
        #expect(try await lib.fcall("report", at: t0, "nonsense", "SUCCESS", "").errorMessage == "UNKNOWN_PERMIT nonsense")
        #expect(try await lib.fcall("fold", at: t0, "0", "1", "2", "0", "").errorMessage == "BAD_COUNTS 0 1 2 0")
        let long = String(repeating: "x", count: 65)
        #expect(try await lib.fcall("fold", at: t0, "0", "1", "0", "0", long).errorMessage == "BAD_FOLD_ID longer than 64 bytes")
        #expect(try await lib.fcall("control", at: t0, "explode", "ops", "").errorMessage == "BAD_ACTION explode")
        // None of them touched a key.
        for suffix in Self.keySuffixes + ["f"] { #expect(try await !lib.exists(suffix), "\(suffix)") }
    }

    // MARK: Fold ids: a fold applies once

    @Test func aFoldIdIsRememberedInTheFoldsKey() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        let first = Self.strings(try await lib.fcall("fold", at: t0, "0", "3", "1", "0", "batch-1"))
        #expect(first == ["OK", "closed", "counted", "0", "0", "auto", "0", "5000", "0"])
        // Score: applied at * 4 + the effect's code (0: counted).
        #expect(try await lib.zset("f") == ["batch-1", String(t0 * 4)])
        let ttl = try await lib.h.redis("PTTL", lib.key("f")).int ?? -3
        #expect(ttl > 0 && ttl <= 120_000)
        guard case .string(let record) = try await lib.h.redis("GET", lib.key("s")) else { throw TestRedisError("no record") }
        let again = Self.strings(try await lib.fcall("fold", at: t0 + 50, "0", "3", "1", "0", "batch-1"))
        #expect(again == ["OK", "closed", "counted", "0", "0", "auto", "0", "5000", "1"])
        // Nothing applied: the record and the folds key are as they were.
        #expect(try await lib.h.redis("GET", lib.key("s")) == .string(record))
        #expect(try await lib.zset("f") == ["batch-1", String(t0 * 4)])
        // A fold without an id is not remembered.
        _ = try await lib.fcall("fold", at: t0 + 60, "0", "1", "0", "0", "")
        #expect(try await lib.zset("f").count == 2)
    }

    @Test func theSameFoldIdTwiceCountsOnce() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let a = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, id: "p1-7", now: t0)
        let b = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, id: "p1-7", now: t0 + 1)
        #expect(!a.duplicate && a.effect == .counted)
        #expect(b.duplicate && b.effect == .counted && b.state == .closed && b.events.isEmpty)
        let s = try await h.store.state(h.name(), now: t0 + 2)
        #expect(s.calls == 3 && s.failures == 1)
    }

    @Test func differentFoldIdsCountTwice() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let a = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, id: "p1-7", now: t0)
        let b = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, id: "p1-8", now: t0 + 1)
        let c = try await h.store.fold(h.name(), generation: 0, calls: 3, failures: 1, slow: 0, now: t0 + 2)
        #expect(!a.duplicate && !b.duplicate && !c.duplicate)
        #expect(try await h.store.state(h.name(), now: t0 + 3).calls == 9)
    }

    /// A fold that tripped the breaker, retried after the trip and a reset: it applies nothing again
    /// and answers with its first effect.
    @Test func aFoldIdIsRememberedAcrossATrip() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        let trip = try await h.store.fold(h.name(), generation: 0, calls: 4, failures: 4, slow: 0, id: "trip", now: t0)
        #expect(trip.state == .open && trip.generation == 1 && !trip.duplicate)
        let retried = try await h.store.fold(h.name(), generation: 0, calls: 4, failures: 4, slow: 0, id: "trip", now: t0 + 10)
        #expect(retried.duplicate && retried.effect == .counted && retried.state == .open && retried.events.isEmpty)
        #expect(retried.retryAfterMs == 990)
        _ = try await h.store.reset(h.name(), actor: "ops", now: t0 + 20)
        let afterReset = try await h.store.fold(h.name(), generation: 2, calls: 4, failures: 4, slow: 0, id: "trip", now: t0 + 30)
        #expect(afterReset.duplicate && afterReset.state == .closed && afterReset.generation == 2)
        #expect(try await h.store.state(h.name(), now: t0 + 31).calls == 0)
        // A stale fold is remembered as stale.
        let stale = try await h.store.fold(h.name(), generation: 0, calls: 1, failures: 0, slow: 0, id: "old", now: t0 + 40)
        let staleAgain = try await h.store.fold(h.name(), generation: 2, calls: 1, failures: 0, slow: 0, id: "old", now: t0 + 41)
        #expect(stale.effect == .stale && !stale.duplicate && staleAgain.effect == .stale && staleAgain.duplicate)
    }

    /// Fold ids are remembered for 120 s (on the injected clock); older ones are pruned and count again.
    @Test func theFoldMemoryLapses() async throws {
        let lib = try await Library()
        defer { lib.h.shutdown() }
        let store = lib.h.store
        let name = lib.h.name()
        _ = try await store.fold(name, generation: 0, calls: 1, failures: 0, slow: 0, id: "a", now: t0)
        #expect(try await store.fold(name, generation: 0, calls: 1, failures: 0, slow: 0, id: "a", now: t0 + 120_000).duplicate)
        _ = try await store.fold(name, generation: 0, calls: 1, failures: 0, slow: 0, id: "b", now: t0 + 120_001)
        // "a" (applied at t0) is pruned by the next fold that carries an id.
        #expect(try await lib.zset("f") == ["b", String((t0 + 120_001) * 4)])
        let late = try await store.fold(name, generation: 0, calls: 1, failures: 0, slow: 0, id: "a", now: t0 + 120_002)
        #expect(!late.duplicate && late.effect == .counted)
        #expect(try await store.state(name, now: t0 + 120_003).calls == 2)
        // And the key itself expires when no fold with an id comes for that long.
        let ttl = try await lib.h.redis("PTTL", lib.key("f")).int ?? -3
        #expect(ttl > 0 && ttl <= 120_000)
    }

    @Test func badFoldIdsAreRefused() async throws {
        let h = try StoreHarness(policy: Self.small)
        defer { h.shutdown() }
        for id in ["", String(repeating: "i", count: 65)] {
            await #expect {
                _ = try await h.store.fold(h.name(), generation: 0, calls: 1, failures: 0, slow: 0, id: id, now: t0)
            } throws: {
                ($0 as? StoreError)?.code == .invalidArgument
            }
        }
        let ok = try await h.store.fold(h.name(), generation: 0, calls: 1, failures: 0, slow: 0, id: String(repeating: "i", count: 64), now: t0)
        #expect(!ok.duplicate)
    }

    // MARK: Loading

    @Test func theLibraryIsReloadedAfterFunctionFlush() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let client = RedisClient(configuration: .patient(server.endpoint))
        defer { client.shutdown() }
        let store = BreakerStore(client: client, configuration: .init(keyPrefix: "p"))
        let name = try BreakerName("payments")
        // The first call loads the library by itself.
        #expect(try await store.acquire(name, now: t0).decision.permitValue == "0.1.\(t0)")
        let listed = try await client.send(["FUNCTION", "LIST", "LIBRARYNAME", "breakerd_v2"])
        let words = Self.flattened(listed)
        #expect(words.contains("breakerd_v2_acquire") && words.contains("breakerd_v2_state") && words.contains("no-writes"), "\(words)")
        _ = try await client.send(["FUNCTION", "FLUSH"])
        #expect(try await client.send(["FUNCTION", "LIST"]).elements?.isEmpty == true)
        // Function not found -> FUNCTION LOAD -> retried once, for each kind of call.
        #expect(try await store.acquire(name, now: t0).decision.permitValue == "0.2.\(t0)")
        _ = try await client.send(["FUNCTION", "FLUSH"])
        #expect(try await store.state(name, now: t0).exists)
        _ = try await client.send(["FUNCTION", "FLUSH"])
        #expect(try await store.states([name, try BreakerName("other")], now: t0).map(\.exists) == [true, false])
        _ = try await client.send(["FUNCTION", "FLUSH"])
        #expect(try await store.fold(name, generation: 0, calls: 1, failures: 0, slow: 0, id: "x", now: t0).effect == .counted)
        let stats = try await client.send(["INFO", "commandstats"]).text ?? ""
        #expect(stats.contains("cmdstat_function|load:calls=5"), "\(stats)")
    }

    @Test func anOlderRedisIsRefusedWithItsVersion() throws {
        #expect(throws: Never.self) { try FunctionLibrary.checkVersion(info: "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n") }
        #expect(throws: Never.self) { try FunctionLibrary.checkVersion(info: "redis_version:7.2.4\r\n") }
        #expect(throws: Never.self) { try FunctionLibrary.checkVersion(info: "redis_version:8.0.0\r\n") }
        for (info, says) in [
            ("# Server\r\nredis_version:6.2.14\r\n", "this Redis is 6.2.14"),
            ("redis_version:5.0.7\r\n", "this Redis is 5.0.7"),
            ("redis_mode:standalone\r\n", "no redis_version line"),
            ("redis_version:seven\r\n", "'seven'"),
        ] {
            #expect {
                try FunctionLibrary.checkVersion(info: info)
            } throws: {
                let message = ($0 as? StoreError)?.message ?? ""
                return message.contains(says) && (message.contains("7.0 or newer") || !says.contains("this Redis"))
            }
        }
    }

    /// A function that answers in another shape than the store expects (here: a library of the same
    /// name with other functions) is an error naming the function, never a field read as 0.
    @Test func aReplyOfTheWrongShapeIsAnErrorNamingTheFunction() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let client = RedisClient(configuration: .patient(server.endpoint))
        defer { client.shutdown() }
        let store = BreakerStore(client: client, configuration: .init(keyPrefix: "p"))
        try await store.loadLibrary()
        let impostor = """
            #!lua name=breakerd_v2
            redis.register_function('breakerd_v2_acquire', function() return 'PERMIT\\nclosed\\n0.1.1\\n0' end)
            redis.register_function('breakerd_v2_report', function() return 'OK\\nclosed\\ncounted\\nzero' end)
            redis.register_function('breakerd_v2_fold', function() return { 'OK', 'closed', 'counted', 0, 0, 'auto', 0, 5000, 0 } end)
            redis.register_function{ function_name = 'breakerd_v2_state', callback = function() return 'exists\\n1' end, flags = { 'no-writes' } }
            redis.register_function('breakerd_v2_control', function() return 'OK\\nsideways\\nauto\\n0' end)
            """
        #expect(try await client.send(["FUNCTION", "LOAD", "REPLACE", impostor]).text == "breakerd_v2")
        let name = try BreakerName("payments")
        func refused(_ function: String, wanting: String, _ call: () async throws -> Void) async {
            do {
                try await call()
                Issue.record("\(function): no error")
            } catch {
                let message = (error as? StoreError)?.message ?? "\(error)"
                #expect((error as? StoreError)?.code == .redis)
                #expect(message.contains("breakerd_v2_\(function) replied with an unexpected shape") && message.contains(wanting), "\(message)")
            }
        }
        await refused("acquire", wanting: "at least 5 fields") { _ = try await store.acquire(name, now: t0) }
        await refused("report", wanting: "gen (field 4) as a whole number, not 'zero'") {
            _ = try await store.report(name, permit: "0.1.1", outcome: .success, now: t0)
        }
        // The shape of the earlier scripts' replies: an array.
        await refused("fold", wanting: "one text") {
            _ = try await store.fold(name, generation: 0, calls: 1, failures: 0, slow: 0, now: t0)
        }
        await refused("state", wanting: "a field state") { _ = try await store.state(name, now: t0) }
        await refused("control", wanting: "state (field 2), not 'sideways'") {
            _ = try await store.reset(name, actor: "ops", now: t0)
        }
    }
}
