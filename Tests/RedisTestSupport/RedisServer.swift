import Foundation
import Hiredis

/// A private redis-server for tests: started on a free loopback port in a directory of its own,
/// stopped (and its directory removed) by `stop()`. Tests that need to stop and start Redis under
/// a running client own one of these; the rest share `TestRedis.shared`.
public final class RedisServer: @unchecked Sendable {
    public private(set) var port: Int = 0
    public let directory: URL
    private var pid: pid_t = 0

    public var endpoint: RedisEndpoint { RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port)) }
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts redis-server (found on PATH) on a free port and waits until it answers PING.
    public init(port: Int? = nil, extraArguments: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // A port found free can be taken by another test's server before ours binds it: try again.
        var attempt = 0
        while true {
            self.port = try port ?? Self.freePort()
            do {
                try start(extraArguments: extraArguments)
                return
            } catch {
                attempt += 1
                if port != nil || attempt == 3 { throw error }
            }
        }
    }

    /// Starts the server again on the same port (after `kill()`); its data is gone.
    public func start(extraArguments: [String] = []) throws {
        let arguments = [
            try Self.redisServerPath(), "--port", String(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning",
            "--enable-debug-command", "yes",
        ] + extraArguments
        pid = try Self.spawn(arguments)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            // Any answer means it is up; with a password set, PING answers NOAUTH.
            if let c = try? RedisConnection(endpoint: endpoint), let reply = try? c.command(["PING"]),
                reply == .status("PONG") || reply.errorMessage?.hasPrefix("NOAUTH") == true
            {
                return
            }
            if !isRunning { break }
            usleep(20_000)
        }
        stop(removeDirectory: false)
        throw TestRedisError("redis-server did not start on port \(port) (arguments: \(arguments.dropFirst().joined(separator: " ")))")
    }

    private var isRunning: Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// Stops the server at once (SIGKILL), as a crash would; `start()` brings it back.
    public func kill() {
        signalAndReap(SIGKILL)
    }

    /// Freezes the server (SIGSTOP): connections stay open and commands wait, unanswered, until
    /// `resume()`; unlike CLIENT PAUSE or DEBUG SLEEP, the test says when it ends.
    public func suspend() {
        if pid > 0 { Foundation.kill(pid, SIGSTOP) }
    }

    /// Lets a suspended server go on (SIGCONT); it answers what waited, in order.
    public func resume() {
        if pid > 0 { Foundation.kill(pid, SIGCONT) }
    }

    /// Stops the server and removes its directory.
    public func stop() {
        stop(removeDirectory: true)
    }

    private func stop(removeDirectory: Bool) {
        signalAndReap(SIGTERM)
        if removeDirectory { try? FileManager.default.removeItem(at: directory) }
    }

    // Plain kill and waitpid: Foundation's Process.waitUntilExit hangs when called from atexit.
    private func signalAndReap(_ signal: Int32) {
        guard pid > 0 else { return }
        Foundation.kill(pid, signal)
        // A suspended server acts on SIGTERM only once it runs again.
        Foundation.kill(pid, SIGCONT)
        for i in 0..<500 {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || r < 0 { break }
            if i == 250 { Foundation.kill(pid, SIGKILL) }
            usleep(10_000)
        }
        pid = 0
    }

    deinit { stop() }

    private static func spawn(_ arguments: [String]) throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 2, "/dev/null", O_WRONLY, 0)
        var cArgs = arguments.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &fileActions, nil, &cArgs, environ)
        guard rc == 0 else { throw TestRedisError("cannot start \(arguments[0]): error \(rc)") }
        return pid
    }

    static func redisServerPath() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = "\(dir)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestRedisError("redis-server is not on PATH: run scripts/setup")
    }

    /// A port nothing listens on now: bind port 0, read what the kernel chose, let it go.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestRedisError("socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                guard bind(fd, p, len) == 0 else { return -1 }
                return getsockname(fd, p, &len)
            }
        }
        guard bound == 0 else { throw TestRedisError("could not find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

public struct TestRedisError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The Redis the tests share: the one `scripts/test` started (BREAKERD_TEST_REDIS_URL), or else one
/// this test process starts for itself and stops when it exits. Tests keep apart by key prefix.
public enum TestRedis {
    public static let endpoint: RedisEndpoint = {
        if let url = ProcessInfo.processInfo.environment["BREAKERD_TEST_REDIS_URL"], !url.isEmpty {
            return try! RedisEndpoint(url: url)
        }
        let server = try! RedisServer()
        own = server
        atexit { TestRedis.own?.stop() }
        return server.endpoint
    }()

    nonisolated(unsafe) static var own: RedisServer?

    /// A key prefix no other test uses.
    public static func uniquePrefix(_ label: String = "t") -> String {
        "test-\(label)-\(UUID().uuidString.prefix(8))"
    }
}

extension RedisServer {
    /// Starts a server from a thread of its own: starting one blocks, and async tests must not block
    /// Swift's cooperative pool (the machine may have only two of its threads).
    public static func launch(extraArguments: [String] = []) async throws -> RedisServer {
        try await offPool { try RedisServer(extraArguments: extraArguments) }
    }

    /// `start()` from a thread of its own.
    public func restart() async throws {
        try await offPool { try self.start() }
    }
}

/// Runs blocking work (sync hiredis calls, process control) on a new thread, off the cooperative pool.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}
