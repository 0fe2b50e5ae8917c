import Foundation
import RedisTestSupport
import Testing

/// redis-cli and redis-py, unchanged, against a real breakerd.
@Suite struct RealClientTests {
    @Test func redisCliOneShotAndPiped() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let oneShot = try await run("/usr/bin/redis-cli", ["-p", "\(t.port)", "ACQUIRE", "payments"])
        #expect(oneShot.status == 0)
        #expect(oneShot.output.hasPrefix("PERMIT ") && oneShot.output.hasSuffix(" closed\n"), "\(oneShot.output)")

        let piped = try await run("/usr/bin/redis-cli", ["-p", "\(t.port)"], input: "PING\nACQUIRE x\nSTATE x\nFROB\n")
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
        let result = try await run("/usr/bin/env", ["python3", "-c", script])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.hasPrefix("ok DENY open "), "\(result.output)\(result.error)")
    }
}

struct ProcessResult: Sendable {
    var status: Int32
    var output: String
    var error: String
}

/// Runs a program to its end off the cooperative pool, feeding it `input`.
func run(_ path: String, _ arguments: [String], input: String? = nil, timeoutSeconds: Double = 30) async throws -> ProcessResult {
    try await offPool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try inp.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return ProcessResult(
            status: p.terminationStatus, output: String(decoding: output, as: UTF8.self), error: String(decoding: error, as: UTF8.self))
    }
}
