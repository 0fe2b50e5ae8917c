import Foundation
import NIOPosix
import RedisTestSupport
import Synchronization
import Testing

@testable import Hiredis

@Suite struct RedisSubscriberTests {
    final class Inbox: Sendable {
        private let messages = Mutex<[String]>([])
        let live = StateLog()

        var onMessage: @Sendable (String, [UInt8]) -> Void {
            { [self] channel, payload in messages.withLock { $0.append("\(channel) \(String(decoding: payload, as: UTF8.self))") } }
        }

        var all: [String] { messages.withLock { $0 } }

        func wait(for message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            for _ in 0..<3000 {
                if all.contains(message) { return }
                try await Task.sleep(for: .milliseconds(10))
            }
            Issue.record("never got '\(message)'; got \(all)", sourceLocation: sourceLocation)
            throw TestRedisError("no message")
        }
    }

    @Test func deliversMessagesAndSubscribesAgainAfterRedisRestarts() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let channel = TestRedis.uniquePrefix("events")
        let inbox = Inbox()
        let subscriber = RedisSubscriber(
            configuration: .init(endpoint: server.endpoint, channels: [channel]), onMessage: inbox.onMessage,
            onLiveChange: inbox.live.record)
        defer { subscriber.shutdown() }
        subscriber.start()
        try await inbox.live.wait(until: { $0 == [true] })
        #expect(subscriber.isLive)
        let publisher = RedisClient(configuration: .patient(server.endpoint))
        defer { publisher.shutdown() }
        #expect(try await publisher.send(["PUBLISH", channel, "hello"]) == .integer(1))
        try await inbox.wait(for: "\(channel) hello")

        server.kill()
        try await inbox.live.wait(until: { $0 == [true, false] })
        #expect(!subscriber.isLive)
        try await server.restart()
        try await inbox.live.wait(until: { $0 == [true, false, true] })
        // The publisher is not what is tested: its request may meet its own connection's end (EOF)
        // or its reconnect wait, so it publishes until Redis takes the message.
        var published = false
        for _ in 0..<500 where !published {
            published = (try? await publisher.send(["PUBLISH", channel, "again"])) == .integer(1)
            if !published { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(published)
        try await inbox.wait(for: "\(channel) again")
        #expect(inbox.all == ["\(channel) hello", "\(channel) again"])
    }

    @Test func pingsOnlyWhenIdleAndDropsARedisThatStopsAnswering() async throws {
        let server = try await RedisServer.launch()
        defer { server.stop() }
        let inbox = Inbox()
        let subscriber = RedisSubscriber(
            configuration: .init(endpoint: server.endpoint, channels: ["a", "b"], idlePingMs: 50), onMessage: inbox.onMessage,
            onLiveChange: inbox.live.record)
        defer { subscriber.shutdown() }
        subscriber.start()
        try await inbox.live.wait(until: { $0 == [true] })
        // Idle: PINGs go out and are answered; the connection stays as it is.
        for _ in 0..<3000 where subscriber.pingsSent < 3 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(subscriber.pingsSent >= 3)
        #expect(subscriber.connectAttempts == 1)
        #expect(inbox.live.changes == [true])
        // A Redis that stops answering (the socket still open) is dropped after an unanswered PING.
        server.suspend()
        try await inbox.live.wait(until: { $0 == [true, false] })
        server.resume()
        try await inbox.live.wait(until: { $0 == [true, false, true] })
    }

    @Test func logsInOverAUnixSocket() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-sub-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = dir.appendingPathComponent("r.sock").path
        let server = try await RedisServer.launch(extraArguments: ["--requirepass", "hunter2", "--unixsocket", socket])
        defer { server.stop() }
        let endpoint = try RedisEndpoint(url: "unix://:hunter2@\(socket)")
        let inbox = Inbox()
        let subscriber = RedisSubscriber(
            configuration: .init(endpoint: endpoint, channels: ["c"]), onMessage: inbox.onMessage, onLiveChange: inbox.live.record)
        defer { subscriber.shutdown() }
        subscriber.start()
        try await inbox.live.wait(until: { $0 == [true] })
        let publisher = RedisClient(configuration: .patient(endpoint))
        defer { publisher.shutdown() }
        #expect(try await publisher.send(["PUBLISH", "c", "x"]) == .integer(1))
        try await inbox.wait(for: "c x")

        let refused = Inbox()
        let wrong = RedisSubscriber(
            configuration: .init(endpoint: try RedisEndpoint(url: "unix://:nope@\(socket)"), channels: ["c"]),
            onMessage: refused.onMessage, onLiveChange: refused.live.record)
        defer { wrong.shutdown() }
        wrong.start()
        try await refused.live.wait(until: { $0 == [false] })
        #expect(refused.live.details.first?.contains("AUTH refused") == true)
    }
}
