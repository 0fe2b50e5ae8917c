import BreakerCore
import BreakerServerTestSupport
import RESP
import RedisTestSupport
import Testing

/// Two breakerd servers on one Redis and one key prefix give the same answers.
@Suite struct FleetTests {
    @Test func failuresThroughOneTripTheOtherAndHalfOpenPermitsHoldAcrossBoth() async throws {
        // Open long enough that the deny below is still "open" on a loaded machine; the test then
        // sleeps for the retry-after the deny itself gives.
        var policy = TestServer.policy(openMs: 5000)
        try policy.set("half_open_permits", to: "3")
        try policy.set("permit_ttl_ms", to: "10000")
        let prefix = TestRedis.uniquePrefix("fleet")
        let a = try await TestServer.start(prefix: prefix, policy: policy)
        let b = try await TestServer.start(prefix: prefix, policy: policy)
        defer {
            Task {
                await a.stop()
                await b.stop()
            }
        }
        let ca = try await a.connect()
        let cb = try await b.connect()
        #expect(try await cb.command("ACQUIRE", "shared").text?.hasPrefix("PERMIT ") == true)
        for _ in 0..<4 {
            let p = try #require(try await ca.command("ACQUIRE", "shared").text).split(separator: " ")[1]
            _ = try await ca.command("REPORT", "shared", String(p), "FAILURE")
        }
        let deny = try #require(try await cb.command("ACQUIRE", "shared").text).split(separator: " ")
        #expect(deny.count >= 3 && deny[0] == "DENY" && deny[1] == "open", "\(deny)")
        let retryAfter = try #require(Int(deny[2]))
        try await Task.sleep(for: .milliseconds(retryAfter + 50))
        // 50 clients, half on each server, ask at once: at most half_open_permits trial permits.
        var clients: [TestClient] = []
        for i in 0..<50 { clients.append(try await (i % 2 == 0 ? a : b).connect()) }
        let replies = try await withThrowingTaskGroup(of: String.self) { group in
            for c in clients {
                group.addTask { try await c.command("ACQUIRE", "shared").text ?? "" }
            }
            var all: [String] = []
            for try await r in group { all.append(r) }
            return all
        }
        let permits = replies.filter { $0.hasPrefix("PERMIT ") }
        #expect(permits.count == 3, "\(replies)")
        #expect(permits.allSatisfy { $0.hasSuffix(" half_open") })
        #expect(replies.filter { $0.hasPrefix("DENY half_open ") }.count == 47)
        let state = try #require(try await ca.command("STATE", "shared").text)
        #expect(state.contains(" trials=3/3 "), "\(state)")
    }
}
