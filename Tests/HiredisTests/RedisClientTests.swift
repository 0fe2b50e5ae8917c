import Foundation
import Hiredis
import RedisTestSupport
import Synchronization
import Testing

@Suite struct RedisClientTests {
    @Test func concurrentCallersShareFewConnections() async throws {
        let client = RedisClient(configuration: .init(endpoint: TestRedis.endpoint, connections: 2))
        defer { client.shutdown() }
        let key = TestRedis.uniquePrefix("client")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<500 {
                group.addTask { _ = try await client.send(["INCR", key]) }
            }
            try await group.waitForAll()
        }
        #expect(try await client.send(["GET", key]).int == 500)
        let clients = try await client.send(["CLIENT", "LIST"]).text ?? ""
        // Two connections of ours (plus any other test's): never one per caller.
        #expect(clients.split(separator: "\n").count < 50)
        _ = try await client.send(["DEL", key])
    }

    @Test func aSlowRedisFailsAtTheDeadline() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let client = RedisClient(configuration: .init(endpoint: server.endpoint, connections: 2, deadlineMs: 100))
        defer { client.shutdown() }
        #expect(try await client.send(["PING"]) == .status("PONG"))
        // Redis is blocked for 3 s; every request must fail at its 100 ms deadline, not when Redis wakes.
        let blocker = try RedisConnection(endpoint: server.endpoint, options: .init(commandTimeoutMs: 5000))
        try blocker.write(["DEBUG", "SLEEP", "3"])
        let started = ContinuousClock.now
        let kinds = try await withThrowingTaskGroup(of: RedisError.Kind?.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do throws(RedisError) {
                        _ = try await client.send(["PING"])
                        return nil
                    } catch {
                        return error.kind
                    }
                }
            }
            return try await group.reduce(into: [RedisError.Kind?]()) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        #expect(kinds.allSatisfy { $0 == .timeout || $0 == .unavailable })
        #expect(kinds.contains(.timeout))
        #expect(elapsed < .milliseconds(1500), "answered after \(elapsed), while Redis slept 3 s")
        _ = try? blocker.readReply()
    }

    @Test func reconnectsAfterRedisRestarts() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let states = Mutex<[Bool]>([])
        let client = RedisClient(configuration: .init(
            endpoint: server.endpoint, connections: 1, deadlineMs: 200, reconnectMinMs: 20, reconnectMaxMs: 100,
            onStateChange: { up, _ in states.withLock { $0.append(up) } }))
        defer { client.shutdown() }
        #expect(try await client.send(["SET", "k", "v"]) == .status("OK"))
        server.kill()
        await #expect(throws: RedisError.self) { _ = try await client.send(["PING"]) }
        #expect(client.isConnected == false)
        try await server.restart()
        var answered = false
        for _ in 0..<50 where !answered {
            if (try? await client.send(["PING"])) == .status("PONG") { answered = true } else { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answered)
        #expect(client.isConnected)
        #expect(states.withLock { $0 } == [true, false, true])
    }
}
