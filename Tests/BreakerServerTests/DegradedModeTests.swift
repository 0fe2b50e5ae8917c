import BreakerServer
import Hiredis
import BreakerServerTestSupport
import Foundation
import RESP
import RedisTestSupport
import Testing

/// Redis stopped under a running breakerd: ACQUIRE still answers within the deadline, by the
/// configured policy, marked `degraded`; Redis started again: shared state resumes by itself.
@Suite(.serialized) struct DegradedModeTests {
    @Test func localPolicyWhileRedisIsDownThenSharedStateResumes() async throws {
        let redis = try await RedisServer.launch()
        defer { stopOffPool(redis) }
        let logs = LogCapture()
        let t = try await TestServer.start(endpoint: redis.endpoint, deadlineMs: 50, logs: logs)
        defer { Task { await t.stop() } }
        let c = try await t.connect()

        let shared = try #require(try await c.command("ACQUIRE", "dep").text)
        #expect(shared.hasPrefix("PERMIT ") && !shared.hasSuffix("degraded"))
        let sharedPermit = String(shared.split(separator: " ")[1])

        try await offPool { redis.kill() }
        // Every ACQUIRE answers within the deadline (plus scheduling slack), marked degraded; the
        // local breaker trips on the failures reported through this breakerd.
        var replies: [String] = []
        for _ in 0..<8 {
            let started = ContinuousClock.now
            let reply = try #require(try await c.command("ACQUIRE", "dep").text)
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .milliseconds(250), "ACQUIRE took \(elapsed)")
            #expect(reply.hasSuffix(" degraded"), "\(reply)")
            replies.append(reply)
            let words = reply.split(separator: " ")
            if words[0] == "PERMIT" {
                #expect(words[1].hasPrefix("L"))
                #expect(try await c.command("REPORT", "dep", String(words[1]), "FAILURE").text?.hasSuffix(" degraded") == true)
            }
        }
        #expect(replies.prefix(4).allSatisfy { $0.hasPrefix("PERMIT L") && $0.hasSuffix(" closed degraded") }, "\(replies)")
        #expect(replies.dropFirst(4).allSatisfy { $0.hasPrefix("DENY open ") && $0.hasSuffix(" degraded") }, "\(replies)")
        // The outcome of a shared permit is acknowledged and dropped.
        #expect(try await c.command("REPORT", "dep", sharedPermit, "SUCCESS").text?.hasSuffix(" degraded") == true)
        #expect(try await c.command("REPORT", "dep", "L99.99", "SUCCESS").text?.hasPrefix("ERR unknown permit") == true)
        #expect(try await c.command("STATE", "dep").text?.hasPrefix("ERR store unavailable: ") == true)
        #expect(try await c.command("INFO").text?.contains("store:down\r\n") == true)
        #expect(logs.contains("warning store down"), "\(logs.all)")
        #expect(logs.contains("notice transition", "event=dep closed->open reason=failure_rate", "local=true"), "\(logs.all)")

        try await redis.restart()
        // No restart of breakerd: the client reconnects and the store reloads its scripts (NOSCRIPT).
        var resumed = false
        for _ in 0..<100 where !resumed {
            let reply = try #require(try await c.command("ACQUIRE", "dep2").text)
            resumed = !reply.hasSuffix("degraded")
            if !resumed { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(resumed)
        #expect(try await c.command("STATE", "dep2").text?.hasPrefix("dep2 closed mode=auto") == true)
        #expect(try await c.command("INFO").text?.contains("store:up\r\n") == true)
        #expect(logs.contains("notice store up"), "\(logs.all)")
    }

    @Test func allowAndDenyPolicies() async throws {
        let redis = try await RedisServer.launch()
        defer { stopOffPool(redis) }
        let allow = try await TestServer.start(endpoint: redis.endpoint, deadlineMs: 50) { $0.degradedPolicy = .allow }
        let deny = try await TestServer.start(endpoint: redis.endpoint, deadlineMs: 50) { $0.degradedPolicy = .deny }
        defer {
            Task {
                await allow.stop()
                await deny.stop()
            }
        }
        let a = try await allow.connect()
        let d = try await deny.connect()
        #expect(try await a.command("ACQUIRE", "x").text?.hasPrefix("PERMIT ") == true)
        try await offPool { redis.kill() }
        let permit = try #require(try await a.command("ACQUIRE", "x").text)
        #expect(permit == "PERMIT Lallow closed degraded")
        #expect(try await a.command("REPORT", "x", "Lallow", "FAILURE") == .simpleString("OK closed degraded"))
        #expect(try await d.command("ACQUIRE", "x") == .simpleString("DENY open 1000 degraded"))
    }

    /// An operator's FORCE OPEN, made through this breakerd or another, and a breaker that tripped
    /// open stay denied while Redis cannot answer, whatever `--degraded` says; an operator's
    /// FORCE CLOSED stays permitted.
    @Test(arguments: [DegradedPolicy.local, .allow, .deny])
    func operatorsDecisionsAndOpenBreakersHoldWhileRedisCannotAnswer(policy: DegradedPolicy) async throws {
        let redis = try await RedisServer.launch()
        defer { stopOffPool(redis) }
        let prefix = TestRedis.uniquePrefix("known")
        let a = try await TestServer.start(prefix: prefix, endpoint: redis.endpoint, policy: TestServer.policy(openMs: 600_000), deadlineMs: 50) {
            $0.degradedPolicy = policy
        }
        let b = try await TestServer.start(prefix: prefix, endpoint: redis.endpoint, deadlineMs: 50)
        defer {
            Task {
                await a.stop()
                await b.stop()
            }
        }
        let c = try await a.connect()
        let other = try await b.connect()
        let watcher = try await a.connect()
        #expect(try await watcher.command("SUBSCRIBE", "breakers").elements?.count == 3)

        #expect(try await c.command("FORCE", "fo", "OPEN").text == "OK open mode=forced_open")
        #expect(try await c.command("FORCE", "fc", "CLOSED").text == "OK closed mode=forced_closed")
        // Forced through the other breakerd: this one learns it from the fleet's events.
        #expect(try await other.command("FORCE", "remote", "OPEN", "TTL", "600000").text == "OK open mode=forced_open")
        // A breaker that trips here: one failure at min_calls 1.
        #expect(try await c.command("CONFIG", "SET", "tripped", "min_calls", "1") == .simpleString("OK"))
        let permit = try #require(try await c.command("ACQUIRE", "tripped").text?.split(separator: " ").dropFirst().first)
        #expect(try await c.command("REPORT", "tripped", String(permit), "FAILURE").text == "OK open")
        var seen: Set<String> = []
        while !seen.contains("remote") || !seen.contains("tripped") {
            let message = try await watcher.read()
            if let line = message.elements?.last?.text, let name = line.split(separator: " ").first { seen.insert(String(name)) }
        }

        let admin = RedisClient(configuration: .init(endpoint: redis.endpoint))
        defer { admin.shutdown() }
        _ = try await admin.send(["CLIENT", "PAUSE", "20000", "ALL"])
        defer { Task { _ = try? await admin.send(["CLIENT", "UNPAUSE"]) } }

        for name in ["fo", "remote", "tripped"] {
            let reply = try #require(try await c.command("ACQUIRE", name).text)
            #expect(reply.hasPrefix("DENY open ") && reply.hasSuffix(" degraded"), "\(name): \(reply)")
        }
        #expect(try await c.command("ACQUIRE", "fc").text == "PERMIT Lforced closed degraded")
        #expect(try await c.command("REPORT", "fc", "Lforced", "FAILURE").text == "OK closed degraded")
        // A breaker nothing is known of gets the configured policy.
        let unknown = try #require(try await c.command("ACQUIRE", "unknown").text)
        switch policy {
        case .local: #expect(unknown.hasPrefix("PERMIT L0.1.") && unknown.hasSuffix(" degraded"), "\(unknown)")
        case .allow: #expect(unknown == "PERMIT Lallow closed degraded")
        case .deny: #expect(unknown == "DENY open 1000 degraded")
        }
        #expect(try await c.command("INFO").text?.contains("degraded_answers:6\r\n") == true)
    }

    @Test func underLoadEveryAcquireIsAnsweredInTime() async throws {
        let redis = try await RedisServer.launch()
        defer { stopOffPool(redis) }
        let t = try await TestServer.start(endpoint: redis.endpoint, deadlineMs: 50)
        defer { Task { await t.stop() } }
        var clients: [TestClient] = []
        for _ in 0..<8 { clients.append(try await t.connect()) }
        let killer = Task {
            try await Task.sleep(for: .milliseconds(150))
            try await offPool { redis.kill() }
        }
        // Each client loops ACQUIRE/REPORT for about 600 ms while Redis dies under it.
        let slowest = try await withThrowingTaskGroup(of: (Duration, Int, Int).self) { group in
            for (i, c) in clients.enumerated() {
                group.addTask {
                    var worst = Duration.zero
                    var degraded = 0
                    var answered = 0
                    let end = ContinuousClock.now + .milliseconds(600)
                    while ContinuousClock.now < end {
                        let started = ContinuousClock.now
                        let reply = try await c.command("ACQUIRE", "load\(i % 2)").text ?? ""
                        worst = max(worst, ContinuousClock.now - started)
                        #expect(reply.hasPrefix("PERMIT ") || reply.hasPrefix("DENY "), "\(reply)")
                        answered += 1
                        if reply.hasSuffix(" degraded") { degraded += 1 }
                        let words = reply.split(separator: " ")
                        if words.first == "PERMIT" {
                            _ = try await c.command("REPORT", "load\(i % 2)", String(words[1]), "SUCCESS")
                        }
                    }
                    return (worst, answered, degraded)
                }
            }
            var all: [(Duration, Int, Int)] = []
            for try await r in group { all.append(r) }
            return all
        }
        try await killer.value
        for (worst, answered, degraded) in slowest {
            #expect(worst < .milliseconds(250), "an ACQUIRE took \(worst)")
            #expect(answered > 0 && degraded > 0)
        }
    }
}

/// Stops a private redis-server from a thread of its own: stopping waits for the process, and a
/// test must not block the cooperative pool (a `defer` cannot await).
func stopOffPool(_ redis: RedisServer) {
    Thread { redis.stop() }.start()
}
