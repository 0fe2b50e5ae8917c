import Foundation
import Hiredis

/// A private redis-server for a breakerd given no `--redis`: found on PATH, listening only on a unix
/// socket in a temporary directory, stopped (and the directory removed) by `stop()`. Its state is
/// shared with nobody beyond this host.
public final class EmbeddedRedis: @unchecked Sendable {
    public let directory: URL
    public let socketPath: String
    private var pid: pid_t = 0

    public var endpoint: RedisEndpoint { RedisEndpoint(address: .unix(path: socketPath)) }

    /// Starts redis-server and waits (up to 10 s) until it answers PING. Blocks: call it before
    /// serving, or off the cooperative pool.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        socketPath = directory.appendingPathComponent("redis.sock").path
        let server = try Self.findOnPath("redis-server")
        let arguments = [
            server, "--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700", "--save", "",
            "--appendonly", "no", "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning",
        ]
        pid = try Self.spawn(arguments)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let c = try? RedisConnection(endpoint: endpoint), (try? c.command(["PING"])) == .status("PONG") { return }
            usleep(20_000)
        }
        stop()
        throw EmbeddedRedisError(message: "redis-server did not answer on \(socketPath) within 10 s")
    }

    deinit { stop() }

    /// Stops redis-server (SIGTERM, then SIGKILL after 5 s) and removes its directory.
    public func stop() {
        if pid > 0 {
            kill(pid, SIGTERM)
            for i in 0..<500 {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid || r < 0 { break }
                if i == 499 { kill(pid, SIGKILL) }
                usleep(10_000)
            }
            pid = 0
        }
        try? FileManager.default.removeItem(at: directory)
    }

    static func findOnPath(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw EmbeddedRedisError(message: "\(name) is not on PATH: install redis-server or pass --redis")
    }

    private static func spawn(_ arguments: [String]) throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        // Its own log goes nowhere: breakerd logs what matters (store up/down).
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, "/dev/null", O_WRONLY, 0)
        // The child must not inherit a blocked or ignored SIGTERM (the service group's signal
        // handling), or stop() could not end it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cArgs = arguments.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &fileActions, &attributes, &cArgs, environ)
        guard rc == 0 else { throw EmbeddedRedisError(message: "cannot start \(arguments[0]): error \(rc)") }
        return pid
    }
}
