import BreakerServerTestSupport
import RESP
import Testing

/// With secrets configured: NOAUTH before AUTH, WRONGPASS for a bad pair, NOPERM for a replica
/// trying an operator's command.
@Suite struct RoleTests {
    static func start() async throws -> TestServer {
        try await TestServer.start {
            $0.password = "replica-secret"
            $0.adminPassword = "admin-secret"
        }
    }

    @Test func replicaAndAdminRoles() async throws {
        let t = try await Self.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.command("PING") == .simpleString("PONG"))
        #expect(try await c.command("ACQUIRE", "p") == .error("NOAUTH Authentication required."))
        #expect(try await c.command("STATE", "p") == .error("NOAUTH Authentication required."))
        #expect(try await c.command("HELLO", "3").text?.hasPrefix("NOAUTH HELLO must be called with the client already authenticated") == true)
        #expect(try await c.command("AUTH", "wrong") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(try await c.command("AUTH", "admin", "replica-secret") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(try await c.command("AUTH", "replica-secret") == .simpleString("OK"))
        #expect(try await c.command("ACQUIRE", "p").text?.hasPrefix("PERMIT ") == true)
        #expect(try await c.command("CONFIG", "GET", "p").text?.hasPrefix("window_ms=") == true)
        #expect(try await c.command("FORCE", "p", "OPEN") == .error("NOPERM User default has no permissions to run the 'force' command"))
        #expect(try await c.command("RESET", "p") == .error("NOPERM User default has no permissions to run the 'reset' command"))
        #expect(try await c.command("CONFIG", "SET", "p", "min_calls", "5") == .error("NOPERM User default has no permissions to run the 'config|set' command"))
        #expect(try await c.command("AUTH", "admin", "admin-secret") == .simpleString("OK"))
        #expect(try await c.command("FORCE", "p", "OPEN") == .simpleString("OK open mode=forced_open"))
        #expect(try await c.command("STATE", "p").text?.contains(" mode_by=admin@127.0.0.1:") == true)
    }

    @Test func helloAuthClause() async throws {
        let t = try await Self.start()
        defer { Task { await t.stop() } }
        let bad = try await t.connect()
        #expect(try await bad.command("HELLO", "3", "AUTH", "default", "nope") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        let good = try await t.connect()
        guard case .map(let pairs) = try await good.command("HELLO", "3", "AUTH", "admin", "admin-secret", "SETNAME", "ops") else {
            Issue.record("HELLO with AUTH did not answer a map")
            return
        }
        #expect(pairs.contains { $0.0 == .bulk("proto") && $0.1 == .integer(3) })
        #expect(try await good.command("RESET", "q") == .simpleString("OK closed"))
        #expect(try await good.command("CLIENT", "GETNAME") == .bulk("ops"))
    }

    @Test func redisPyWithAPassword() async throws {
        let t = try await Self.start()
        defer { Task { await t.stop() } }
        let script = """
            import redis
            r = redis.Redis(port=\(t.port), password='replica-secret')
            print(r.execute_command('ACQUIRE', 'pw').decode().split(' ')[0])
            try:
                redis.Redis(port=\(t.port), password='bad').ping()
            except redis.AuthenticationError:
                print('refused')
            try:
                r.execute_command('FORCE', 'pw', 'OPEN')
            except redis.exceptions.NoPermissionError:
                print('noperm')
            """
        let result = try await runProcess("/usr/bin/env", ["python3", "-c", script])
        #expect(result.output == "PERMIT\nrefused\nnoperm\n", "\(result.output)\(result.error)")
    }
}

/// Failed AUTHs are counted, logged at most once a second per peer, and answered late after
/// several in a row; a correct AUTH clears the count.
@Suite struct AuthFailureTests {
    @Test func failedAuthsAreCountedLoggedSparinglyAndSlowed() async throws {
        let logs = LogCapture()
        let t = try await TestServer.start(logs: logs) { c in
            c.password = "replica-secret"
            c.adminPassword = "admin-secret"
        }
        defer { Task { await t.stop() } }
        let reader = try await t.connect()
        #expect(try await reader.command("AUTH", "replica-secret") == .simpleString("OK"))
        let c = try await t.connect()
        for _ in 0..<8 {
            #expect(try await c.command("AUTH", "admin", "guess").text?.hasPrefix("WRONGPASS") == true)
        }
        // Another connection from the same address is the same peer.
        let d = try await t.connect()
        #expect(try await d.command("HELLO", "3", "AUTH", "admin", "guess").text?.hasPrefix("WRONGPASS") == true)
        let info = try #require(try await reader.command("INFO").text)
        #expect(info.contains("auth_failures:9\r\n"), "\(info)")
        // The sixth failure in a row and every one after it waited before its answer.
        #expect(info.contains("auth_throttled:4\r\n"), "\(info)")
        let lines = logs.all.filter { $0.contains("authentication failed") }
        #expect(!lines.isEmpty && lines.count < 9, "\(lines)")
        #expect(lines.first?.contains("in_a_row=1") == true, "\(lines)")

        #expect(try await c.command("AUTH", "admin", "admin-secret") == .simpleString("OK"))
        #expect(try await c.command("AUTH", "admin", "guess").text?.hasPrefix("WRONGPASS") == true)
        #expect(try await reader.command("INFO").text?.contains("auth_throttled:4\r\n") == true)
    }
}
