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
        #expect(try await sub.command("FORCE", "pay", "OPEN") == .simpleString("OK open mode=forced_open"))
        let push = try await sub.read()
        guard case .push(let e) = push else {
            Issue.record("expected a push, got \(push)")
            return
        }
        #expect(e[0] == .bulk("message") && e[1] == .bulk("breaker:pay"))
        #expect(e[2].text?.hasPrefix("pay closed->open ") == true)
    }
}

extension RESPValue {
    /// A bulk string, or RESP's null for nil.
    static func bulk(_ text: String?) -> RESPValue {
        text.map { RESPValue.bulkString(.init(string: $0)) } ?? .null
    }
}
