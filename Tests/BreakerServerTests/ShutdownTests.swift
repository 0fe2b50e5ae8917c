import BreakerServer
import BreakerServerTestSupport
import Foundation
import RESP
import RedisTestSupport
import Testing

/// Graceful shutdown, in-process and as the real `breakerd` executable.
@Suite struct ShutdownTests {
    @Test func shutdownAnswersWhatWasAlreadySent() async throws {
        let t = try await TestServer.start()
        let c = try await t.connect()
        #expect(try await c.command("PING") == .simpleString("PONG"))
        // 20 frames (under 700 bytes) arrive in one read: all of them are in flight once the first
        // is answered. (Frames still unread in the socket when shutdown starts are not answered.)
        try await c.send(String(repeating: TestClient.frame(["ACQUIRE", "inflight"]), count: 20))
        // The first answer shows the server has read the pipeline; shut down in its middle.
        #expect(try await c.read().text?.hasPrefix("PERMIT ") == true)
        await t.stop()
        for _ in 0..<19 {
            #expect(try await c.read().text?.hasPrefix("PERMIT ") == true)
        }
        #expect(try await c.isClosedByServer())
    }

    @Test func listeningBeyondLoopbackWithoutSecretsIsWarnedAbout() async throws {
        let logs = LogCapture()
        let open = try await TestServer.start(logs: logs) { $0.host = "0.0.0.0" }
        #expect(try await open.connect().command("ACQUIRE", "first").text?.hasPrefix("PERMIT ") == true)
        await open.stop()
        #expect(logs.contains("warning listening on a non-loopback address without secrets"), "\(logs.all)")
        #expect(logs.contains("notice store up"), "\(logs.all)")

        let quiet = LogCapture()
        let guarded = try await TestServer.start(logs: quiet) {
            $0.host = "0.0.0.0"
            $0.password = "p"
        }
        await guarded.stop()
        #expect(!quiet.contains("non-loopback"))
    }

    /// The built executable next to the test bundle (swift test builds every product).
    static var executable: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("breakerd").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return dir.appendingPathComponent("breakerd").path
    }

    @Test func versionPrintsTheBuildsVersion() async throws {
        let version = try await runProcess(Self.executable, ["--version"])
        #expect(version.status == 0)
        #expect(version.output == BreakerdBuild.version + "\n", "\(version.output)")
    }

    @Test func helpListsEveryFlagWithItsDefault() async throws {
        let help = try await runProcess(Self.executable, ["--help"])
        #expect(help.status == 0)
        for flag in [
            "--listen", "--redis", "--password", "--admin-password", "--store-deadline-ms", "--degraded", "--key-prefix",
            "--policy", "--max-clients", "BREAKERD_LISTEN", "BREAKERD_REDIS", "(default: 127.0.0.1:7420)", "(default: 50)",
            "(default: local)", "(default: breakerd)", "--timeout", "--request-timeout-ms", "(default: 5000)",
            "--max-clients-per-peer", "--admin-reserved", "--eviction-check", "(default: refuse)",
        ] {
            #expect(help.output.contains(flag), "--help lacks \(flag)")
        }
    }

    @Test func sigtermStopsTheEmbeddedDefaultAndExitsZero() async throws {
        let port = try RedisServer.freePort()
        let (process, stderr) = try await offPool { () -> (Process, Pipe) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.executable)
            // The HTTP endpoint on a port of the kernel's choice, so a breakerd already on 7421 cannot clash.
            p.arguments = ["--listen", "127.0.0.1:\(port)", "--http", "127.0.0.1:0", "--key-prefix", TestRedis.uniquePrefix("exe")]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            return (p, err)
        }
        var up = false
        for _ in 0..<100 where !up {
            if let c = try? await TestClient.connect(port: port), (try? await c.command("PING")) == .simpleString("PONG") {
                up = true
                #expect(try await c.command("ACQUIRE", "exe").text?.hasPrefix("PERMIT ") == true)
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(up)
        process.terminate()  // SIGTERM
        let status = try await offPool { () -> Int32 in
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(status == 0)
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("shared with nobody beyond this host"), "\(log)")
        let socket = log.split(separator: " ").first { $0.hasPrefix("socket=") }.map { String($0.dropFirst("socket=".count)) }
        if let socket {
            #expect(!FileManager.default.fileExists(atPath: socket), "the private redis-server's directory is left behind")
        }
    }

    /// A Redis that may evict breaker keys is refused at start unless told to warn.
    @Test func aRedisThatMayEvictBreakerKeysIsRefusedAtStart() async throws {
        let redis = try await RedisServer.launch(extraArguments: ["--maxmemory-policy", "allkeys-lru"])
        defer { stopOffPool(redis) }
        let port = try RedisServer.freePort()
        let refused = try await runProcess(
            Self.executable, ["--redis", redis.url, "--listen", "127.0.0.1:\(port)", "--http", "off"], timeoutSeconds: 60)
        #expect(refused.status != 0)
        #expect(refused.error.contains("maxmemory-policy is allkeys-lru"), "\(refused.error)")

        let logs = LogCapture()
        let t = try await TestServer.start(endpoint: redis.endpoint, logs: logs)
        defer { Task { await t.stop() } }
        try await RedisSettingsCheck.check(t.store, mode: .warn, logger: logs.logger)
        #expect(logs.contains("warning Redis may evict breaker keys", "maxmemory_policy=allkeys-lru"), "\(logs.all)")
        await #expect(throws: RedisSettingsCheck.Refusal.self) {
            try await RedisSettingsCheck.check(t.store, mode: .refuse, logger: logs.logger)
        }
        // noeviction passes quietly.
        let quiet = LogCapture()
        let fine = try await TestServer.start(logs: quiet)
        defer { Task { await fine.stop() } }
        try await RedisSettingsCheck.check(fine.store, mode: .refuse, logger: quiet.logger)
        #expect(!quiet.contains("maxmemory"))
    }
}
