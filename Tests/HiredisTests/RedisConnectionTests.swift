import Foundation
import Hiredis
import RedisTestSupport
import Testing

@Suite struct RedisConnectionTests {
    @Test func repliesAreCopiedWithEveryType() async throws {
        try await offPool {
            let c = try RedisConnection(endpoint: TestRedis.endpoint)
            let key = TestRedis.uniquePrefix("conn")
            #expect(try c.command(["PING"]) == .status("PONG"))
            #expect(try c.command(["RPUSH", key, "a", "b"]) == .integer(2))
            #expect(try c.command(["LRANGE", key, "0", "-1"]) == .array([.string(Array("a".utf8)), .string(Array("b".utf8))]))
            #expect(try c.command(["GET", key + ":missing"]) == .null)
            #expect(try c.command(["NOSUCHCOMMAND"]).errorMessage?.hasPrefix("ERR unknown command") == true)
            // An error reply leaves the connection usable.
            #expect(try c.command(["PING"]) == .status("PONG"))
            _ = try c.command(["DEL", key])
        }
    }

    @Test func argumentsAreBinarySafe() async throws {
        try await offPool {
            let c = try RedisConnection(endpoint: TestRedis.endpoint)
            let key = Array(TestRedis.uniquePrefix("bin").utf8)
            let value: [UInt8] = [0, 13, 10, 255, 32, 0]
            #expect(try c.command(bytes: [Array("SET".utf8), key, value]) == .status("OK"))
            #expect(try c.command(bytes: [Array("GET".utf8), key]) == .string(value))
            _ = try c.command(bytes: [Array("DEL".utf8), key])
        }
    }

    @Test func pipelineAnswersInOrder() async throws {
        try await offPool {
            let c = try RedisConnection(endpoint: TestRedis.endpoint)
            let key = TestRedis.uniquePrefix("pipe")
            let commands = (1...100).map { _ in [Array("INCR".utf8), Array(key.utf8)] }
            let replies = try c.pipeline(commands)
            #expect(replies == (1...100).map { .integer(Int64($0)) })
            _ = try c.command(["DEL", key])
        }
    }

    @Test func connectFailureIsTyped() async throws {
        try await offPool {
            let port = try RedisServer.freePort()
            #expect {
                try RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port)))
            } throws: { ($0 as? RedisError)?.kind == .connect }
        }
    }

    @Test func timeoutIsTypedAndTheContextIsDropped() async throws {
        try await offPool {
            let server = try RedisServer()
            defer { server.stop() }
            let c = try RedisConnection(endpoint: server.endpoint, options: .init(commandTimeoutMs: 100))
            let started = Date()
            #expect {
                _ = try c.command(["DEBUG", "SLEEP", "0.5"])
            } throws: { ($0 as? RedisError)?.kind == .timeout }
            #expect(Date().timeIntervalSince(started) < 0.45)
            #expect(c.isBroken)
            #expect { _ = try c.command(["PING"]) } throws: { ($0 as? RedisError)?.kind == .unavailable }
        }
    }

    @Test func authAndDatabaseSelection() async throws {
        try await offPool {
            let server = try RedisServer(extraArguments: ["--requirepass", "hunter2", "--user", "ops", "on", ">opspw", "~*", "+@all"])
            defer { server.stop() }
            let address = server.endpoint.address
            #expect {
                try RedisConnection(endpoint: RedisEndpoint(address: address, password: "wrong"))
            } throws: { ($0 as? RedisError)?.kind == .handshake }

            let withPassword = try RedisConnection(endpoint: RedisEndpoint(address: address, password: "hunter2", database: 3))
            #expect(try withPassword.command(["SET", "k", "db3"]) == .status("OK"))

            let asUser = try RedisConnection(endpoint: RedisEndpoint(url: "redis://ops:opspw@127.0.0.1:\(server.port)/3"))
            #expect(try asUser.command(["GET", "k"]) == .string(Array("db3".utf8)))
            #expect(try asUser.command(["ACL", "WHOAMI"]) == .string(Array("ops".utf8)))

            let db0 = try RedisConnection(endpoint: RedisEndpoint(address: address, password: "hunter2"))
            #expect(try db0.command(["GET", "k"]) == .null)
        }
    }

    @Test func unixSocket() async throws {
        try await offPool {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-sock-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let socket = dir.appendingPathComponent("r.sock").path
            let server = try RedisServer(extraArguments: ["--unixsocket", socket])
            defer { server.stop(); try? FileManager.default.removeItem(at: dir) }
            let c = try RedisConnection(endpoint: RedisEndpoint(url: "unix://\(socket)"))
            #expect(try c.command(["PING"]) == .status("PONG"))
        }
    }

    @Test func subscriberReadsPublishedMessages() async throws {
        try await offPool {
            let sub = try RedisConnection(endpoint: TestRedis.endpoint)
            let channel = TestRedis.uniquePrefix("chan")
            try sub.write(["SUBSCRIBE", channel])
            #expect(try sub.readReply().elements?.first?.text == "subscribe")
            let pub = try RedisConnection(endpoint: TestRedis.endpoint)
            #expect(try pub.command(["PUBLISH", channel, "hello"]) == .integer(1))
            #expect(try sub.readReply().elements?.map(\.text) == ["message", channel, "hello"])
        }
    }
}
