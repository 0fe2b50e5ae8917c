import BreakerClient
import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Testing

/// The built breakerctl, run as a subprocess against an in-process breakerd.
@Suite struct BreakerctlTests {
    @Test func statusPrintsAPlainTableWhenPipedAndJSONOnRequest() async throws {
        let t = try await TestServer.startForClients()
        let client = t.client()
        let name = uniqueBreaker("ctl")
        try await client.force(name, mode: .forcedOpen, ttl: .seconds(30))
        let table = try await runBreakerctl(["status", "--address", "127.0.0.1:\(t.port)"])
        #expect(table.status == 0, "\(table.error)")
        let lines = table.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("BREAKER") == true)
        #expect(lines.first?.contains("FAILURE_RATE") == true)
        let row = try #require(lines.first { $0.hasPrefix(name) })
        #expect(row.contains("open") && row.contains("forced_open"))
        #expect(!table.output.contains("\u{1B}["), "colour when piped")

        let json = try await runBreakerctl(
            ["status", name, "--json"], environment: ["BREAKERCTL_ADDRESS": "127.0.0.1:\(t.port)"])
        #expect(json.status == 0, "\(json.error)")
        let decoded = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
        let first = try #require(decoded?.first)
        #expect(first["name"] as? String == name)
        #expect(first["state"] as? String == "open")
        #expect(first["mode"] as? String == "forced_open")
        #expect((first["retry_after_ms"] as? Int ?? 0) > 20_000)
        await client.shutdown()
        await t.stop()
    }

    @Test func exitCodes() async throws {
        let t = try await TestServer.startForClients {
            $0.password = "replica-secret"
            $0.adminPassword = "admin-secret"
        }
        let at = ["--address", "127.0.0.1:\(t.port)"]
        let admin = at + ["--user", "admin", "--password", "admin-secret"]
        let name = uniqueBreaker("codes")

        let ping = try await runBreakerctl(["ping"] + admin)
        #expect(ping.status == 0, "\(ping.output) \(ping.error)")
        #expect(ping.output.contains("PONG"))
        // 2: usage.
        #expect(try await runBreakerctl(["force", name, "sideways"] + admin).status == 2)
        #expect(try await runBreakerctl(["frobnicate"]).status == 2)
        // 3: nothing listens there.
        let free = try RedisServer.freePort()
        let unreachable = try await runBreakerctl(["status", "--address", "127.0.0.1:\(free)"])
        #expect(unreachable.status == 3, "\(unreachable.error)")
        // 4: no AUTH (NOAUTH), a wrong password (WRONGPASS), a replica acting as admin (NOPERM), a bad value (-ERR).
        let noAuth = try await runBreakerctl(["status"] + at)
        #expect(noAuth.status == 4, "\(noAuth.error)")
        #expect(noAuth.error.contains("NOAUTH"))
        let wrongPass = try await runBreakerctl(["status", "--password", "nope"] + at)
        #expect(wrongPass.status == 4, "\(wrongPass.error)")
        #expect(wrongPass.error.contains("WRONGPASS"))
        let replica = try await runBreakerctl(["force", name, "open", "--password", "replica-secret"] + at)
        #expect(replica.status == 4, "\(replica.error)")
        #expect(replica.error.contains("NOPERM"))
        let badConfig = try await runBreakerctl(["config", "set", name, "failure_rate=2"] + admin)
        #expect(badConfig.status == 4)
        #expect(badConfig.error.contains("failure_rate"))
        // 5: a breaker breakerd does not know.
        #expect(try await runBreakerctl(["history", name] + admin).status == 5)
        #expect(try await runBreakerctl(["reset", name] + admin).status == 5)
        #expect(try await runBreakerctl(["status", name] + admin).status == 5)
        // 0: once it exists, the same commands work.
        let forced = try await runBreakerctl(["force", name, "open", "--ttl", "60000", "--reason", "drill"] + admin)
        #expect(forced.status == 0, "\(forced.error)")
        #expect(forced.output.contains("mode=forced_open"))
        let history = try await runBreakerctl(["history", name, "--raw"] + admin)
        #expect(history.status == 0)
        #expect(history.output.contains("closed->open") && history.output.contains("why=drill"))
        #expect(try await runBreakerctl(["reset", name] + admin).status == 0)
        // The connection options before the subcommand, as --help and the README show them.
        let before = try await runBreakerctl(admin + ["reset", name])
        #expect(before.status == 0, "\(before.error)")
        let nested = try await runBreakerctl(["--user=admin", "--password", "admin-secret"] + at + ["config", "set", name, "min_calls=5"])
        #expect(nested.status == 0, "\(nested.error)")
        let config = try await runBreakerctl(["config", "get", "default"] + admin)
        #expect(config.status == 0)
        #expect(config.output.contains("min_calls=4"))
        await t.stop()
    }

    @Test func helpShowsExamplesAndExitCodes() async throws {
        let help = try await runBreakerctl(["--help"])
        #expect(help.status == 0)
        for text in ["Examples:", "Exit codes:", "BREAKERCTL_ADDRESS", "status", "watch", "force"] {
            #expect(help.output.contains(text), "--help lacks \(text)")
        }
    }
}
