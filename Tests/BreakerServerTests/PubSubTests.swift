import BreakerServerTestSupport
import RESP
import Testing

/// SUBSCRIBE with Redis's exact frames, fed by the server's one Redis subscription.
@Suite struct PubSubTests {
    @Test func resp2FramesAndEvents() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let sub = try await t.connect()
        try await sub.send(TestClient.frame(["SUBSCRIBE", "breakers", "breaker:orders"]))
        #expect(try await sub.read() == .array([.bulk("subscribe"), .bulk("breakers"), .integer(1)]))
        #expect(try await sub.read() == .array([.bulk("subscribe"), .bulk("breaker:orders"), .integer(2)]))
        #expect(try await sub.command("PING") == .array([.bulk("pong"), .bulk("")]))
        #expect(try await sub.command("PING", "redis-py-health-check") == .array([.bulk("pong"), .bulk("redis-py-health-check")]))
        #expect(try await sub.command("ACQUIRE", "x") == .error("ERR Can't execute 'acquire': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"))

        let admin = try await t.connect()
        _ = try await admin.command("FORCE", "orders", "OPEN")
        // One event, delivered once per matching channel, in subscription order.
        let first = try await sub.read()
        let second = try await sub.read()
        let frames = [first, second]
        #expect(Set(frames.compactMap { $0.elements?[1].text }) == ["breakers", "breaker:orders"])
        for f in frames {
            let e = try #require(f.elements)
            #expect(e.count == 3 && e[0] == .bulk("message"))
            #expect(e[2].text?.hasPrefix("orders closed->open gen=1 at=") == true, "\(f)")
        }
        _ = try await admin.command("FORCE", "other", "OPEN")
        let onlyAll = try #require(try await sub.read().elements)
        #expect(onlyAll[1] == .bulk("breakers") && onlyAll[2].text?.hasPrefix("other ") == true)

        try await sub.send(TestClient.frame(["UNSUBSCRIBE"]))
        #expect(try await sub.read() == .array([.bulk("unsubscribe"), .bulk("breakers"), .integer(1)]))
        #expect(try await sub.read() == .array([.bulk("unsubscribe"), .bulk("breaker:orders"), .integer(0)]))
        #expect(try await sub.command("UNSUBSCRIBE") == .array([.bulk("unsubscribe"), .bulk(nil as String?), .integer(0)]))
        #expect(try await sub.command("PING") == .simpleString("PONG"))
        #expect(try await sub.command("SUBSCRIBE", "nope") == .error("ERR unknown channel 'nope': subscribe to breakers or breaker:<name>"))
    }

    @Test func resp3PushesAndCommandsWhileSubscribed() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let sub = try await t.connect()
        _ = try await sub.command("HELLO", "3")
        #expect(try await sub.command("SUBSCRIBE", "breaker:pay") == .push([.bulk("subscribe"), .bulk("breaker:pay"), .integer(1)]))
        // RESP3 keeps every command available while subscribed.
        #expect(try await sub.command("ACQUIRE", "pay").text?.hasPrefix("PERMIT ") == true)
        // The event may overtake the command's own reply: a push can come between any two replies.
        try await sub.send(TestClient.frame(["FORCE", "pay", "OPEN"]))
        let frames = [try await sub.read(), try await sub.read()]
        #expect(frames.contains(.simpleString("OK open mode=forced_open")), "\(frames)")
        guard let push = frames.first(where: { if case .push = $0 { return true } else { return false } }),
            case .push(let e) = push
        else {
            Issue.record("expected a push among \(frames)")
            return
        }
        #expect(e[0] == .bulk("message") && e[1] == .bulk("breaker:pay"))
        #expect(e[2].text?.hasPrefix("pay closed->open ") == true)
    }
}

extension PubSubTests {
    @Test func aSubscriberThatNeverReadsIsDropped() async throws {
        let t = try await TestServer.start { $0.maxOutputBytes = 16 * 1024 }
        defer { Task { await t.stop() } }
        let slow = try await TestClient.connect(port: t.port, receiveBufferBytes: 1024)
        #expect(try await slow.command("SUBSCRIBE", "breakers") == .array([.bulk("subscribe"), .bulk("breakers"), .integer(1)]))
        let admin = try await t.connect()
        // Each FORCE makes one event of about 600 bytes: 4000 of them overflow the kernel's
        // buffers and the 16 KiB limit while the subscriber reads nothing.
        let reason = String(repeating: "r", count: 500)
        for round in 0..<20 {
            var frames = ""
            for i in 0..<200 {
                frames += TestClient.frame(["FORCE", "flood", (round * 200 + i) % 2 == 0 ? "OPEN" : "AUTO", "REASON", reason])
            }
            try await admin.send(frames)
            for _ in 0..<200 { _ = try await admin.read() }
        }
        #expect(try await slow.isClosedByServer())
        #expect(try await admin.command("PING") == .simpleString("PONG"))
    }
}

extension RESPValue {
    /// A bulk string, or RESP's null for nil.
    static func bulk(_ text: String?) -> RESPValue {
        text.map { RESPValue.bulkString(.init(string: $0)) } ?? .null
    }
}
