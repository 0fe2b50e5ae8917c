import BreakerCore
import BreakerServer
import BreakerServerTestSupport
import Hiredis
import Foundation
import RESP
import RedisTestSupport
import Synchronization
import Testing

/// The batched consistency mode, through a real server and Redis: local permits whose outcomes are
/// folded into the shared window, local denies while open, an operator's reset seen at its event,
/// and half-open trials that still go to Redis.
@Suite struct BatchedModeTests {
    static func start(
        openMs: Int = 60_000, prefix: String = TestRedis.uniquePrefix("batch"), observer: StoreCalls? = nil
    ) async throws -> TestServer {
        var policy = TestServer.policy(openMs: openMs)
        try policy.set("half_open_permits", to: "2")
        return try await TestServer.start(prefix: prefix, policy: policy, observer: observer) {
            $0.consistency = .batched(flushMs: 20)
        }
    }

    /// Asks until `done` holds for the reply, for at most `seconds` (flushes and events take a while).
    static func acquireUntil(
        _ c: TestClient, _ breaker: String, seconds: Double = 5, _ done: (String) -> Bool
    ) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        var last = ""
        while Date() < deadline {
            last = try #require(try await c.command("ACQUIRE", breaker).text)
            if done(last) { return last }
            let words = last.split(separator: " ")
            if words.first == "PERMIT" { _ = try await c.command("REPORT", breaker, String(words[1]), "IGNORE") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return last
    }

    static func permit(_ line: String) -> String { String(line.split(separator: " ")[1]) }

    @Test func localPermitsAreFoldedIntoTheSharedWindowAndCountOnce() async throws {
        let t = try await Self.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        // The first ACQUIRE of a breaker this process knows nothing of goes to Redis.
        let first = try #require(try await c.command("ACQUIRE", "pay").text)
        #expect(first.hasPrefix("PERMIT ") && !Self.permit(first).hasPrefix("B"), "\(first)")
        #expect(try await c.command("REPORT", "pay", Self.permit(first), "SUCCESS") == .simpleString("OK closed"))
        // Once a flush has read its state, permits come from this process.
        let local = try await Self.acquireUntil(c, "pay") { Self.permit($0).hasPrefix("B") }
        #expect(local.hasPrefix("PERMIT B") && local.hasSuffix(" closed"), "\(local)")
        #expect(try await c.command("REPORT", "pay", Self.permit(local), "SUCCESS") == .simpleString("OK closed"))
        // A second report of the same permit counts nothing; a permit this process never issued is refused.
        #expect(try await c.command("REPORT", "pay", Self.permit(local), "FAILURE") == .simpleString("OK closed"))
        let parts = Self.permit(local).split(separator: ".")
        let never = "\(parts[0]).\(parts[1]).999999"
        #expect(try await c.command("REPORT", "pay", never, "SUCCESS") == .error("ERR unknown permit '\(never)' for breaker 'pay'"))
        // Another breakerd's permit (another token) cannot be checked here and counts nothing.
        #expect(try await c.command("REPORT", "pay", "BZZZZZZ.\(parts[1]).1", "FAILURE") == .simpleString("OK closed"))
        // Within a flush or two, Redis's window holds both successes and no failure.
        var state = ""
        for _ in 0..<200 {
            state = try #require(try await c.command("STATE", "pay").text)
            if state.contains(" calls=2 ") { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(state.contains(" calls=2 failures=0 "), "\(state)")
    }

    @Test func foldedFailuresTripTheBreakerAndOpenIsDeniedLocally() async throws {
        let calls = StoreCalls()
        var policy = TestServer.policy(openMs: 60_000)
        try policy.set("half_open_permits", to: "2")
        let t = try await TestServer.start(policy: policy, observer: calls) { $0.consistency = .batched(flushMs: 20) }
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        _ = try await Self.acquireUntil(c, "db") { Self.permit($0).hasPrefix("B") }
        // Four local permits fail; the fold carries them to Redis, which trips as four REPORTs would.
        var permits: [String] = []
        for _ in 0..<4 { permits.append(Self.permit(try #require(try await c.command("ACQUIRE", "db").text))) }
        // Local while this process's knowledge is fresh; a stalled machine may let it lapse and
        // send some to Redis, whose reports then count through the library's report into the same window.
        #expect(permits.contains { $0.hasPrefix("B") }, "\(permits)")
        for p in permits { _ = try await c.command("REPORT", "db", p, "FAILURE") }
        let deny = try await Self.acquireUntil(c, "db") { $0.hasPrefix("DENY ") }
        #expect(deny.hasPrefix("DENY open "), "\(deny)")
        let history = try #require(try await c.command("HISTORY", "db").elements).compactMap(\.text)
        #expect(history.first?.hasPrefix("db closed->open gen=1 ") == true, "\(history)")
        #expect(history.first?.contains("reason=failure_rate failure_rate=1 threshold=0.5 calls=4 failures=4") == true, "\(history)")
        // While open, denies are answered here: Redis sees no more acquire scripts for it.
        let scripts = try await Self.acquireScripts(calls) {
            for _ in 0..<50 {
                let reply = try await c.command("ACQUIRE", "db").text ?? ""
                #expect(reply.hasPrefix("DENY open "), "\(reply)")
            }
        }
        // Each ask Redis again at most once per two flush intervals (knowledge lapses), never per ACQUIRE.
        #expect(scripts < 25, "\(scripts) acquire scripts for 50 ACQUIREs")
    }

    /// How many ACQUIRE scripts the server sent to Redis while `body` ran.
    static func acquireScripts(_ calls: StoreCalls, _ body: () async throws -> Void) async throws -> Int {
        let before = calls.acquires
        try await body()
        return calls.acquires - before
    }

    @Test func anOperatorsResetTakesEffectWhenItsEventArrives() async throws {
        let prefix = TestRedis.uniquePrefix("batch")
        let calls = StoreCalls()
        let t = try await Self.start(prefix: prefix, observer: calls)
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        let watcher = try await t.connect()
        _ = try await watcher.command("SUBSCRIBE", "breaker:svc")
        #expect(try await c.command("FORCE", "svc", "OPEN") == .simpleString("OK open mode=forced_open"))
        let denied = try await Self.acquireUntil(c, "svc") { $0.hasPrefix("DENY open ") }
        #expect(denied.hasPrefix("DENY open "))
        let scripts = try await Self.acquireScripts(calls) {
            for _ in 0..<50 { _ = try await c.command("ACQUIRE", "svc") }
        }
        #expect(scripts < 25, "\(scripts) scripts for 50 ACQUIREs: not denied locally")
        // Local denies now. An operator resets through another breakerd of the fleet.
        let other = try await TestServer.start(prefix: prefix, policy: TestServer.policy(openMs: 60_000))
        defer { Task { await other.stop() } }
        let admin = try await other.connect()
        #expect(try await admin.command("RESET", "svc") == .simpleString("OK closed"))
        // Once the reset's event reached this breakerd (its subscribers see it), no stale deny.
        var sawReset = false
        while !sawReset {
            let message = try #require(try await watcher.read().elements)
            sawReset = message.last?.text?.contains("->closed") == true && message.last?.text?.contains("reason=reset") == true
        }
        let next = try #require(try await c.command("ACQUIRE", "svc").text)
        #expect(next.hasPrefix("PERMIT "), "\(next)")
    }

    @Test func halfOpenTrialsAlwaysGoToRedis() async throws {
        let t = try await Self.start(openMs: 300)
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        _ = try await Self.acquireUntil(c, "ship") { Self.permit($0).hasPrefix("B") }
        for _ in 0..<4 {
            let p = Self.permit(try #require(try await c.command("ACQUIRE", "ship").text))
            _ = try await c.command("REPORT", "ship", p, "FAILURE")
        }
        _ = try await Self.acquireUntil(c, "ship") { $0.hasPrefix("DENY open ") }
        // After the open time, 30 callers at once get exactly half_open_permits (2) trial permits,
        // each from Redis, never from this process.
        var clients: [TestClient] = []
        for _ in 0..<30 { clients.append(try await t.connect()) }
        try await Task.sleep(for: .milliseconds(400))
        let replies = try await withThrowingTaskGroup(of: String.self) { group in
            for client in clients { group.addTask { try await client.command("ACQUIRE", "ship").text ?? "" } }
            var all: [String] = []
            for try await r in group { all.append(r) }
            return all
        }
        let permits = replies.filter { $0.hasPrefix("PERMIT ") }
        #expect(permits.count == 2, "\(replies)")
        #expect(permits.allSatisfy { $0.hasSuffix(" half_open") && !Self.permit($0).hasPrefix("B") }, "\(permits)")
        let state = try #require(try await c.command("STATE", "ship").text)
        #expect(state.contains(" trials=2/2 "), "\(state)")
    }
}

/// Counts the store calls a server makes, by operation.
final class StoreCalls: BreakerServerObserver {
    private let counts = Mutex<[String: Int]>([:])
    var acquires: Int { counts.withLock { $0["acquire"] ?? 0 } }
    func storeCall(_ operation: String, duration: Duration, succeeded: Bool) {
        counts.withLock { $0[operation, default: 0] += 1 }
    }
}

/// Batched mode's folds against a Redis that stalls or dies: exactly once, or counted as lost.
@Suite struct BatchedFoldTests {
    /// Folds held up by a paused Redis (which runs them when it resumes, after their deadline has
    /// passed) are retried with their id: every acknowledged outcome counts exactly once. Folds
    /// that cannot reach Redis at all within their budget are counted and logged as lost.
    @Test func foldsAreAppliedExactlyOnceAndLossesAreCounted() async throws {
        let redis = try await RedisServer.launch()
        defer { stopOffPool(redis) }
        let logs = LogCapture()
        var policy = TestServer.policy(openMs: 60_000)
        try policy.set("failure_rate", to: "1")
        try policy.set("min_calls", to: "1000000")
        let t = try await TestServer.start(endpoint: redis.endpoint, policy: policy, deadlineMs: 50, logs: logs) {
            $0.consistency = .batched(flushMs: 500)
        }
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        let admin = RedisClient(configuration: .init(endpoint: redis.endpoint))
        defer { admin.shutdown() }

        var expected = 0
        var retried = false
        // A flush can, rarely, slip in between the reports and the pause; then try again.
        for round in 0..<3 where !retried {
            let breaker = "once-\(round)"
            _ = try await BatchedModeTests.acquireUntil(c, breaker) { BatchedModeTests.permit($0).hasPrefix("B") }
            let before = try #require(try await Self.calls(c, breaker))
            expected = 0
            for _ in 0..<200 {
                let reply = try #require(try await c.command("ACQUIRE", breaker).text)
                guard reply.hasPrefix("PERMIT B") else { continue }
                #expect(try await c.command("REPORT", breaker, BatchedModeTests.permit(reply), "FAILURE") == .simpleString("OK closed"))
                expected += 1
            }
            let timeoutsBefore = try await Self.info(c, "store_timeouts")
            // The next flush comes due inside the pause, times out, and is sent again.
            _ = try await admin.send(["CLIENT", "PAUSE", "1200", "ALL"])
            var calls = before
            for _ in 0..<400 where calls < before + expected {
                try await Task.sleep(for: .milliseconds(20))
                calls = try await Self.calls(c, breaker) ?? calls
            }
            #expect(calls == before + expected, "round \(round): \(calls - before) of \(expected) outcomes counted")
            retried = try await Self.info(c, "store_timeouts") > timeoutsBefore
        }
        #expect(retried, "no fold was ever held up by the pause")
        // Nothing more arrives later: a second application of a retried fold would show here.
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await Self.info(c, "outcomes_lost") == 0)

        // Redis gone for good: the outcomes waiting for a fold are lost, and say so.
        _ = try await BatchedModeTests.acquireUntil(c, "lost") { BatchedModeTests.permit($0).hasPrefix("B") }
        for _ in 0..<10 {
            let reply = try #require(try await c.command("ACQUIRE", "lost").text)
            if reply.hasPrefix("PERMIT B") { _ = try await c.command("REPORT", "lost", BatchedModeTests.permit(reply), "SUCCESS") }
        }
        try await offPool { redis.kill() }
        var lost = 0
        for _ in 0..<500 where lost == 0 {
            try await Task.sleep(for: .milliseconds(20))
            lost = try await Self.info(c, "outcomes_lost")
        }
        #expect(lost > 0)
        #expect(logs.contains("outcomes lost", "breaker=lost"), "\(logs.all)")
    }

    /// The breaker's window count from STATE; nil while the store cannot answer.
    static func calls(_ c: TestClient, _ breaker: String) async throws -> Int? {
        let state = try await c.command("STATE", breaker).text ?? ""
        return state.split(separator: " ").first { $0.hasPrefix("calls=") }.flatMap { Int($0.dropFirst(6)) }
    }

    static func info(_ c: TestClient, _ field: String) async throws -> Int {
        let info = try #require(try await c.command("INFO").text)
        let line = try #require(info.split(separator: "\r\n").first { $0.hasPrefix("\(field):") })
        return try #require(Int(line.dropFirst(field.count + 1)))
    }
}
