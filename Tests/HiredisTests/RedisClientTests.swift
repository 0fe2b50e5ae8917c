import Foundation
import Hiredis
import RedisTestSupport
import Synchronization
import Testing

@Suite struct RedisClientTests {
    @Test func concurrentCallersShareFewConnections() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let client = RedisClient(configuration: .init(endpoint: server.endpoint, connections: 2))
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
        // Two connections for 500 concurrent callers.
        #expect(clients.split(separator: "\n").count == 2)
        _ = try await client.send(["DEL", key])
    }

    @Test func aSlowRedisFailsAtTheDeadline() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let client = RedisClient(configuration: .init(endpoint: server.endpoint, connections: 2, deadlineMs: 100))
        defer { client.shutdown() }
        #expect(try await client.send(["PING"]) == .status("PONG"))
        // Redis is blocked for 5 s. Had the requests waited for Redis, none could end before it wakes;
        // they must all fail at their 100 ms deadline instead (the bound is loose because the whole
        // suite shares two cores; run alone they take about 110 ms).
        let blocker = try await offPool { () -> RedisConnectionBox in
            let c = try RedisConnection(endpoint: server.endpoint, options: .init(commandTimeoutMs: 10_000))
            try c.write(["DEBUG", "SLEEP", "5"])
            return RedisConnectionBox(c)
        }
        // Give Redis time to read the DEBUG SLEEP before the PINGs, or it may answer them first.
        try await Task.sleep(for: .milliseconds(200))
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
        #expect(elapsed < .seconds(4), "answered after \(elapsed), while Redis slept 5 s")
        _ = try await offPool { _ = try? blocker.connection.readReply() }
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

/// Carries a connection to another thread; the test uses it from one thread at a time.
struct RedisConnectionBox: @unchecked Sendable {
    let connection: RedisConnection
    init(_ c: RedisConnection) { connection = c }
}
