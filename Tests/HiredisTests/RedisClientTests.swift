import Foundation
import NIOCore
import NIOPosix
import RedisTestSupport
import Synchronization
import Testing

@testable import Hiredis

@Suite struct RedisClientTests {
    @Test func concurrentCallersShareOneConnectionPerEventLoop() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { shutDownLater(group) }
        let client = RedisClient(configuration: .init(endpoint: server.endpoint, eventLoopGroup: group))
        defer { client.shutdown() }
        let key = TestRedis.uniquePrefix("client")
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<500 {
                tasks.addTask { _ = try await client.send(["INCR", key]) }
            }
            try await tasks.waitForAll()
        }
        #expect(try await client.send(["GET", key]).int == 500)
        // Two event loops, two connections, for 500 concurrent callers. (The server's own start-up
        // check connected too; Redis may list it until it has seen that socket close.)
        var clients = 0
        for _ in 0..<300 {
            clients = (try await client.send(["CLIENT", "LIST"]).text ?? "").split(separator: "\n").count
            if clients <= 2 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(clients == 2)
    }

    @Test func aRequestMadeOnAnEventLoopUsesThatLoopsConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        defer { shutDownLater(group) }
        let client = RedisClient(configuration: .init(endpoint: TestRedis.endpoint, eventLoopGroup: group))
        defer { client.shutdown() }
        for loop in group.makeIterator() {
            for _ in 0..<3 {
                let same = try await loop.submit { client.connectionForCaller().eventLoop === loop }.get()
                #expect(same)
            }
        }
        // Off the group's loops, the connections take turns.
        let loops = (0..<6).map { _ in ObjectIdentifier(client.connectionForCaller().eventLoop) }
        #expect(Set(loops).count == 3)
    }

    @Test func repliesMatchTheirRequestsUnderPipelinesFromManyTasks() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { shutDownLater(group) }
        let client = RedisClient(configuration: .init(endpoint: TestRedis.endpoint, deadlineMs: 10_000, eventLoopGroup: group))
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix("order")
        // Some callers run on the group's loops (their loop's connection), the rest round-robin.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for i in 0..<400 {
                tasks.addTask {
                    let key = "\(prefix):\(i)"
                    let value = "v\(i)-" + String(repeating: "x", count: i % 50)
                    let replies = try await client.send(pipeline: [
                        [Array("SET".utf8), Array(key.utf8), Array(value.utf8)],
                        [Array("GET".utf8), Array(key.utf8)],
                        [Array("ECHO".utf8), Array("echo-\(i)".utf8)],
                        [Array("DEL".utf8), Array(key.utf8)],
                    ])
                    #expect(replies == [.status("OK"), .string(Array(value.utf8)), .string(Array("echo-\(i)".utf8)), .integer(1)])
                    let single = try await client.send(["ECHO", "single-\(i)"])
                    #expect(single == .string(Array("single-\(i)".utf8)))
                }
            }
            try await tasks.waitForAll()
        }
    }

    @Test func argumentsAndRepliesAreBinarySafe() async throws {
        let client = RedisClient(configuration: .init(endpoint: TestRedis.endpoint))
        defer { client.shutdown() }
        let key = Array(TestRedis.uniquePrefix("bin").utf8)
        let value: [UInt8] = [0, 13, 10, 255, 32, 0, 36, 42]
        #expect(try await client.send([Array("SET".utf8), key, value]) == .status("OK"))
        #expect(try await client.send([Array("GET".utf8), key]) == .string(value))
        #expect(try await client.send(["NOSUCHCOMMAND"]).errorMessage?.hasPrefix("ERR unknown command") == true)
        // An error reply is a reply: the connection goes on.
        #expect(try await client.send(["PING"]) == .status("PONG"))
        _ = try await client.send([Array("DEL".utf8), key])
    }

    @Test func aPausedRedisFailsRequestsAtTheirDeadline() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let client = RedisClient(configuration: .init(endpoint: server.endpoint, deadlineMs: 100, tripAfterMisses: 0))
        defer { client.shutdown() }
        #expect(try await client.send(["PING"]) == .status("PONG"))
        // Redis is frozen until the requests are done: had they waited for Redis, none could end;
        // they must all fail at their 100 ms deadline instead.
        server.suspend()
        defer { server.resume() }
        // Should deadlines not work, Redis answers after 30 s and the PINGs succeed: a failure, not a hang.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            server.resume()
        }
        defer { watchdog.cancel() }
        let kinds = await withTaskGroup(of: RedisError.Kind?.self) { tasks in
            for _ in 0..<20 {
                tasks.addTask {
                    do throws(RedisError) {
                        _ = try await client.send(["PING"])
                        return nil
                    } catch {
                        return error.kind
                    }
                }
            }
            return await tasks.reduce(into: [RedisError.Kind?]()) { $0.append($1) }
        }
        #expect(kinds.allSatisfy { $0 == .timeout })
    }

    @Test func aReplyAfterItsDeadlineIsDroppedAndTheConnectionStaysInStep() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { shutDownLater(group) }
        let client = RedisClient(configuration: .init(endpoint: server.endpoint, deadlineMs: 100, eventLoopGroup: group, tripAfterMisses: 0))
        defer { client.shutdown() }
        #expect(try await client.send(["PING"]) == .status("PONG"))
        server.suspend()
        await #expect(throws: RedisError.self) { _ = try await client.send(["ECHO", "late"]) }
        server.resume()
        // The first answer after the pause is the reply to its own request, never an earlier one's.
        var first: RedisReply?
        for i in 0..<200 where first == nil {
            first = try? await client.send(["ECHO", "b\(i)"])
            if let reply = first { #expect(reply == .string(Array("b\(i)".utf8))) }
        }
        #expect(first != nil)
        #expect(try await client.send(pipeline: [[Array("ECHO".utf8), Array("c".utf8)], [Array("ECHO".utf8), Array("d".utf8)]])
            == [.string(Array("c".utf8)), .string(Array("d".utf8))])
    }

    @Test func reconnectsAfterRedisRestartsWithinTwoAttempts() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { shutDownLater(group) }
        let states = StateLog()
        let client = RedisClient(configuration: .init(
            endpoint: server.endpoint, deadlineMs: 500, onStateChange: states.record, eventLoopGroup: group))
        defer { client.shutdown() }
        try await states.wait(until: { $0 == [true] })
        #expect(try await client.send(["SET", "k", "v"]) == .status("OK"))
        server.kill()
        try await states.wait(until: { $0 == [true, false] })
        #expect(client.isConnected == false)
        // Down: requests fail at once instead of waiting for a deadline.
        await #expect { _ = try await client.send(["PING"]) } throws: { ($0 as? RedisError)?.kind == .unavailable }
        try await server.restart()
        // Redis answers again from here: the client is up at its next attempt (or the one after,
        // if one was already under way), since it probes every 100 ms at most in an outage's first seconds.
        let attempts = client.connectAttempts
        let back = ContinuousClock.now
        try await states.wait(until: { $0 == [true, false, true] })
        print("reconnect: up \(ContinuousClock.now - back) after Redis answered, \(client.connectAttempts - attempts) attempt(s)")
        #expect(client.connectAttempts - attempts <= 2)
        #expect(client.isConnected)
        #expect(try await client.send(["PING"]) == .status("PONG"))
        #expect(states.changes == [true, false, true])
    }

    /// With two loops the requests take turns between two connections: both go down and come back,
    /// and the owner still hears one down and one up.
    @Test(arguments: [1, 2]) func theStoreBreakerFailsFastAfterMissesAndProbesOneAtATime(loops: Int) async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        defer { shutDownLater(group) }
        let states = StateLog()
        let client = RedisClient(configuration: .init(
            endpoint: server.endpoint, deadlineMs: 100, onStateChange: states.record, eventLoopGroup: group,
            tripAfterMisses: 3, probeIntervalMs: 20))
        defer { client.shutdown() }
        try await states.wait(until: { $0 == [true] })
        server.suspend()
        // Five requests per connection miss their deadline; the third miss takes a connection down.
        let kinds = await withTaskGroup(of: RedisError.Kind?.self) { tasks in
            for _ in 0..<(5 * loops) {
                tasks.addTask {
                    do throws(RedisError) {
                        _ = try await client.send(["PING"])
                        return nil
                    } catch { return error.kind }
                }
            }
            return await tasks.reduce(into: [RedisError.Kind?]()) { $0.append($1) }
        }
        #expect(kinds == Array(repeating: .timeout, count: 5 * loops))
        try await states.wait(until: { $0 == [true, false] })
        // While down, a request fails at once, saying why, instead of waiting for its deadline.
        do {
            _ = try await client.send(["PING"])
            Issue.record("a request succeeded while Redis was paused")
        } catch {
            #expect(error.kind == .unavailable)
            #expect(error.message.contains("store down"))
        }
        // One probe per connection is waiting in the frozen Redis; it is answered when Redis goes on.
        for _ in 0..<3000 where client.probesSent < loops { try await Task.sleep(for: .milliseconds(10)) }
        #expect(client.probesSent == loops)
        server.resume()
        try await states.wait(until: { $0 == [true, false, true] })
        #expect(client.probesSent == loops)
        #expect(try await client.send(["PING"]) == .status("PONG"))
        #expect(states.changes == [true, false, true])
    }

    @Test func authDatabaseAndUnixSocket() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-sock-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = dir.appendingPathComponent("r.sock").path
        let server = try await RedisServer.launch(extraArguments: [
            "--requirepass", "hunter2", "--user", "ops", "on", ">opspw", "~*", "+@all", "--unixsocket", socket,
        ])
        defer { server.stop() }
        let address = server.endpoint.address

        let withPassword = RedisClient(configuration: .init(endpoint: RedisEndpoint(address: address, password: "hunter2", database: 3)))
        defer { withPassword.shutdown() }
        #expect(try await withPassword.send(["SET", "k", "db3"]) == .status("OK"))

        let asUser = RedisClient(configuration: .init(endpoint: try RedisEndpoint(url: "unix://ops:opspw@\(socket)?db=3")))
        defer { asUser.shutdown() }
        #expect(try await asUser.send(["GET", "k"]) == .string(Array("db3".utf8)))
        #expect(try await asUser.send(["ACL", "WHOAMI"]) == .string(Array("ops".utf8)))

        let db0 = RedisClient(configuration: .init(endpoint: RedisEndpoint(address: address, password: "hunter2")))
        defer { db0.shutdown() }
        #expect(try await db0.send(["GET", "k"]) == .null)

        let states = StateLog()
        let wrong = RedisClient(configuration: .init(
            endpoint: RedisEndpoint(address: address, password: "wrong"), onStateChange: states.record))
        defer { wrong.shutdown() }
        try await states.wait(until: { $0 == [false] })
        #expect(states.details.first?.contains("AUTH refused") == true)
        await #expect { _ = try await wrong.send(["PING"]) } throws: { ($0 as? RedisError)?.kind == .unavailable }
    }
}

/// Stops a test's own loops without blocking (the client's `shutdown` defer has run before).
func shutDownLater(_ group: MultiThreadedEventLoopGroup) {
    group.shutdownGracefully(queue: .global()) { _ in }
}

/// What `onStateChange` was told, in order.
final class StateLog: Sendable {
    private let log = Mutex<[(Bool, String)]>([])

    var record: @Sendable (Bool, String) -> Void { { [self] up, detail in log.withLock { $0.append((up, detail)) } } }
    var changes: [Bool] { log.withLock { $0.map(\.0) } }
    var details: [String] { log.withLock { $0.map(\.1) } }

    /// Waits (with a generous bound, for a loaded machine) until the changes satisfy `condition`.
    func wait(until condition: ([Bool]) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for _ in 0..<3000 {
            if condition(changes) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("state changes were \(changes)", sourceLocation: sourceLocation)
        throw TestRedisError("state changes never matched")
    }
}
