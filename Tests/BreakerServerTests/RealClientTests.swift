import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Testing

/// redis-cli and redis-py, unchanged, against a real breakerd.
@Suite struct RealClientTests {
    @Test func redisCliOneShotAndPiped() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let oneShot = try await runProcess("/usr/bin/redis-cli", ["-p", "\(t.port)", "ACQUIRE", "payments"])
        #expect(oneShot.status == 0)
        #expect(oneShot.output.hasPrefix("PERMIT ") && oneShot.output.hasSuffix(" closed\n"), "\(oneShot.output)")

        let piped = try await runProcess("/usr/bin/redis-cli", ["-p", "\(t.port)"], input: "PING\nACQUIRE x\nSTATE x\nFROB\n")
        let lines = piped.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(piped.output)")
        #expect(lines.first == "PONG")
        #expect(lines.dropFirst().first?.hasPrefix("PERMIT ") == true)
        #expect(lines.dropFirst(2).first?.hasPrefix("x closed mode=auto") == true)
        #expect(lines.last?.hasPrefix("ERR unknown command 'FROB'") == true)
    }

    @Test func redisPyWithDefaultSettingsIncludingPubSub() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let script = """
            import redis, time
            r = redis.Redis(port=\(t.port))
            assert r.ping() is True
            reply = r.execute_command('ACQUIRE', 'py').decode()
            kind, permit, state = reply.split(' ')[:3]
            assert kind == 'PERMIT' and state == 'closed', reply
            assert r.execute_command('REPORT', 'py', permit, 'SUCCESS') == b'OK closed'
            try:
                r.execute_command('REPORT', 'py', '12345.1', 'SUCCESS')
                raise SystemExit('no error for an unknown permit')
            except redis.ResponseError as e:
                assert 'unknown permit' in str(e), str(e)
            p = r.pubsub()
            p.subscribe('breaker:py')
            first = p.get_message(timeout=2)
            assert first['type'] == 'subscribe', first
            r.execute_command('FORCE', 'py', 'OPEN', 'REASON', 'test')
            deadline = time.time() + 5
            msg = None
            while time.time() < deadline and msg is None:
                msg = p.get_message(timeout=1)
            assert msg is not None and msg['type'] == 'message', msg
            assert msg['channel'] == b'breaker:py', msg
            assert msg['data'].startswith(b'py closed->open'), msg
            p.close()
            print('ok', r.execute_command('ACQUIRE', 'py').decode())
            """
        let result = try await runProcess("/usr/bin/env", ["python3", "-c", script])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.hasPrefix("ok DENY open "), "\(result.output)\(result.error)")
    }
}

extension RealClientTests {
    /// redis-cli's interactive mode needs a terminal: tmux gives it one (scripts/setup installs tmux).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func redisCliInteractive() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        // A tmux server of the test's own (-L), so no one else's sessions are touched. Its server
        // outlives the command that starts it, so that command's output must not be a pipe we
        // read to its end.
        let socket = "breakerd-test-\(t.port)"
        let session = "cli"
        func tmux(_ args: String...) async throws -> String {
            try await runProcess("/usr/bin/tmux", ["-L", socket] + args).output
        }
        try await spawnDetached(["/usr/bin/tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "200", "-y", "40", "redis-cli -p \(t.port)"])
        defer { Task { _ = try? await runProcess("/usr/bin/tmux", ["-L", socket, "kill-server"]) } }
        // Type each line only once the prompt is drawn: keys typed earlier are eaten by its setup.
        var screen = ""
        func waitFor(_ text: String, count: Int) async throws {
            for _ in 0..<100 {
                screen = try await tmux("capture-pane", "-p", "-t", session)
                if screen.components(separatedBy: text).count > count { return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let prompt = "127.0.0.1:\(t.port)>"
        try await waitFor(prompt, count: 1)
        for (i, command) in ["ACQUIRE inter", "STATE inter", "HELP REPORT", "FROB x"].enumerated() {
            _ = try await tmux("send-keys", "-t", session, command, "Enter")
            try await waitFor(prompt, count: i + 2)
        }
        #expect(screen.contains("> ACQUIRE inter\nPERMIT "), "\(screen)")
        #expect(screen.contains("\ninter closed mode=auto gen="), "\(screen)")
        #expect(screen.contains("(error) ERR unknown command 'FROB'"), "\(screen)")
        // COMMAND DOCS gives redis-cli the syntax of breakerd's own commands.
        #expect(screen.contains("REPORT breaker permit SUCCESS|FAILURE|IGNORE [LATENCY ms]"), "\(screen)")
        // redis-cli quits by itself; kill-server alone would wait on it.
        _ = try await tmux("send-keys", "-t", session, "quit", "Enter")
        for _ in 0..<50 where try await tmux("ls").contains(session) {
            try await Task.sleep(for: .milliseconds(20))
        }
        _ = try await tmux("kill-server")
    }

    @Test func redisAsyncioPipelinesItsHandshake() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let script = """
            import asyncio, redis.asyncio as redis
            async def main():
                r = redis.Redis(port=\(t.port), client_name='replica-1')
                reply = (await r.execute_command('ACQUIRE', 'aio')).decode()
                permit = reply.split(' ')[1]
                print((await r.execute_command('REPORT', 'aio', permit, 'SUCCESS', 'LATENCY', '5')).decode())
                print((await r.execute_command('CLIENT', 'GETNAME')).decode())
                await r.aclose()
            asyncio.run(main())
            """
        let result = try await runProcess("/usr/bin/env", ["python3", "-c", script])
        #expect(result.output == "OK closed\nreplica-1\n", "\(result.output)\(result.error)")
    }
}

/// Runs a program that leaves a daemon behind (tmux's server) and waits for the program itself.
/// Foundation's Process would wait for the daemon too (it holds an inherited descriptor), so this
/// uses posix_spawn, with every descriptor above stderr closed in the child.
func spawnDetached(_ arguments: [String]) async throws {
    try await offPool {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var cArgs = arguments.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], &actions, nil, &cArgs, environ) == 0 else {
            throw TestRedisError("cannot start \(arguments[0])")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }
}
