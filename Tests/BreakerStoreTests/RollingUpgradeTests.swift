import BreakerCore
import BreakerStore
import Hiredis
import RedisTestSupport
import Testing

/// A deploy runs breakerd from before the function library (EVALSHA of its scripts) beside breakerd
/// with the library, on one key prefix. Both read and write the same record layout (layout 2, and
/// both migrate layout 1, the hash), so neither corrupts the other's breakers: a breaker driven by
/// both in turn ends every step exactly as one driven by the library alone.
@Suite struct RollingUpgradeTests {
    /// The earlier breakerd: its scripts (EarlierScripts) with the keys and arguments that store
    /// passed. Run with EVAL, which caches them as EVALSHA would, so a SCRIPT FLUSH elsewhere on the
    /// shared test Redis cannot get in the way.
    struct EarlierBreakerd {
        let h: StoreHarness

        init(_ h: StoreHarness) { self.h = h }

        func call(_ op: String, at now: Int, _ args: [String], breaker b: String = "payments") async throws -> RedisReply {
            let policy = h.store.defaultPolicy().values.map(\.value).joined(separator: " ")
            let config = h.store.configuration
            let keys = ["s", "o", "t", "h", "c"].map { "\(h.prefix):{\(b)}:\($0)" }
            return try await h.client.send(
                ["EVAL", EarlierScripts.script(op), "5"] + keys
                    + [String(now), policy, "\(config.idleTTLMs) \(config.historyLength)", config.eventsChannel, b] + args)
        }
    }

    /// The library's reply to the same call, as FCALL gives it.
    static func fcall(_ h: StoreHarness, _ op: String, at now: Int, _ args: [String], breaker b: String = "payments") async throws -> RedisReply {
        let policy = h.store.defaultPolicy().values.map(\.value).joined(separator: " ")
        let config = h.store.configuration
        var keys = ["s", "o", "t", "h", "c"].map { "\(h.prefix):{\(b)}:\($0)" }
        if op == "fold" { keys.append("\(h.prefix):{\(b)}:f") }
        return try await h.client.send(
            [op == "state" ? "FCALL_RO" : "FCALL", "breakerd_v2_\(op)", String(keys.count)] + keys
                + [String(now), policy, "\(config.idleTTLMs) \(config.historyLength)", config.eventsChannel, b] + args
                + (op == "fold" ? [""] : []))
    }

    /// A reply as the library gives it: one text, a field per line. The earlier scripts answered
    /// arrays (and a fold without `duplicate`), which are written the same way to compare them.
    static func comparable(_ op: String, _ reply: RedisReply, fromLibrary: Bool) -> RedisReply {
        guard !fromLibrary, case .array(let e) = reply else { return reply }
        var fields = e.map { $0.text ?? "?" }
        if op == "fold", fields.count >= 8 { fields.insert("0", at: 8) }
        return .string(Array(fields.joined(separator: "\n").utf8))
    }

    /// Everything a breaker leaves in Redis, by key suffix (the fold ids aside: only the library
    /// keeps them).
    static func keys(_ h: StoreHarness, breaker b: String = "payments") async throws -> [String: RedisReply] {
        var all: [String: RedisReply] = [:]
        let base = "\(h.prefix):{\(b)}:"
        all["s"] = try await h.client.send(["TYPE", base + "s"]).text == "hash"
            ? try await h.client.send(["HGETALL", base + "s"]) : try await h.client.send(["GET", base + "s"])
        for z in ["o", "t"] { all[z] = try await h.client.send(["ZRANGE", base + z, "0", "-1", "WITHSCORES"]) }
        all["h"] = try await h.client.send(["LRANGE", base + "h", "0", "-1"])
        all["c"] = try await h.client.send(["HGETALL", base + "c"])
        return all
    }

    /// Random runs of every operation: `mixed` does each step through the earlier scripts or the
    /// library at random, `library` through the library only; after every step the replies and
    /// every key agree byte for byte. Seed 3 starts both from a record in layout 1 (the hash).
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func bothVersionsDriveOneBreakerAsOne(seed: UInt64) async throws {
        var rng = ReferenceModelPropertyTests.SplitMix(state: seed)
        let policy = BreakerRulesTests.small + [("slow_call_ms", "200"), ("slow_call_rate", "0.75"), ("half_open_permits", "2")]
        // Two prefixes, one breaker name: event lines name the breaker, so replies compare as they are.
        let mixed = try StoreHarness(policy: policy)
        let library = try StoreHarness(policy: policy)
        defer { mixed.shutdown(); library.shutdown() }
        try await mixed.store.loadLibrary()
        let earlier = EarlierBreakerd(mixed)
        if seed == 3 {
            for h in [mixed, library] {
                let slot = (t0 / 1000) % 10
                _ = try await StateLayoutTests.writeHashLayout(h, gen: 0, seq: 2, calls: 2, fails: 1, buckets: [
                    "c\(slot)", "1", "f\(slot)", "1", "c\((slot + 9) % 10)", "1",
                ])
            }
        }
        var now = t0
        var permits: [String] = []
        var byEarlier = 0
        for step in 0..<250 {
            let roll = Int.random(in: 0..<100, using: &rng)
            let op: String
            var args: [String] = []
            if roll < 35 {
                op = "acquire"
            } else if roll < 70, !permits.isEmpty {
                op = "report"
                let i = Int.random(in: 0..<permits.count, using: &rng)
                let permit = roll < 65 ? permits.remove(at: i) : permits[i]
                let outcome = ["SUCCESS", "SUCCESS", "FAILURE", "FAILURE", "IGNORE"].randomElement(using: &rng)!
                let latency = Bool.random(using: &rng) ? String(Int.random(in: 0...400, using: &rng)) : ""
                args = [permit, outcome, latency]
            } else if roll < 78 {
                op = "fold"
                let calls = Int.random(in: 0...3, using: &rng)
                let gen = try await mixed.store.state(mixed.name(), now: now).generation
                args = [String(gen), String(calls), String(Int.random(in: 0...calls, using: &rng)), "0"]
            } else if roll < 81 {
                op = "control"
                args = [
                    ["force", "ops", "drill", "forced_open", "700"], ["force", "ops", "", "metrics_only", "0"],
                    ["force", "ops", "", "auto", "0"], ["reset", "ops", ""], ["config", "ops", "", "min_calls", "3"],
                    ["config", "ops", "", "min_calls", ""],
                ].randomElement(using: &rng)!
            } else if roll < 88 {
                op = "state"
            } else {
                now += [1, 10, 120, 400, 900, 2500].randomElement(using: &rng)!
                continue
            }
            let useEarlier = Bool.random(using: &rng)
            if useEarlier { byEarlier += 1 }
            let a = useEarlier
                ? try await earlier.call(op, at: now, args) : try await Self.fcall(mixed, op, at: now, args)
            let b = try await Self.fcall(library, op, at: now, args)
            let context = "seed \(seed) step \(step) at +\(now - t0): \(op) \(args) by \(useEarlier ? "earlier scripts" : "library")"
            #expect(Self.comparable(op, a, fromLibrary: !useEarlier) == Self.comparable(op, b, fromLibrary: true), "\(context)")
            let ka = try await Self.keys(mixed)
            let kb = try await Self.keys(library)
            #expect(ka == kb, "\(context)")
            if ka != kb { return }
            if op == "acquire", let e = b.text?.split(separator: "\n"), e.first == "PERMIT" { permits.append(String(e[2])) }
        }
        #expect(byEarlier > 50)
        // The run reached the interesting states.
        let history = try await library.client.send(["LRANGE", "\(library.prefix):{payments}:h", "0", "-1"]).elements?.compactMap(\.text) ?? []
        #expect(history.contains { $0.contains("->open") } && history.contains { $0.contains("->half_open") }, "\(history)")
    }
}
