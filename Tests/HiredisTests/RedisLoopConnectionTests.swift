import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import Hiredis

/// One connection with its channel handler and hiredis's reader, on an `EmbeddedChannel`: what it
/// writes, what it does with the bytes Redis would send, and its timers, with no network.
@Suite struct RedisLoopConnectionTests {
    final class Harness: @unchecked Sendable {
        let loop = EmbeddedEventLoop()
        var channels: [EmbeddedChannel] = []
        var health: [RedisConnectionStateMachine<PendingRequest>.Health] = []
        var results: [Int: Result<[RedisReply], RedisError>] = [:]
        var connection: RedisLoopConnection!

        init(trip: Int = 3) {
            let settings = RedisConnectionStateMachine<PendingRequest>.Settings(
                endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379)), tripAfterMisses: trip,
                probeInterval: .milliseconds(20), probeTimeout: .seconds(5), reconnectMin: .milliseconds(10), fastReconnectMax: .milliseconds(100),
                fastReconnectWindow: .seconds(10), reconnectMax: .seconds(2), maxBatch: 256)
            connection = RedisLoopConnection(
                eventLoop: loop, settings: settings, deadline: .milliseconds(50), connectTimeout: .seconds(1),
                connector: { [self] loop in
                    let channel = EmbeddedChannel(loop: self.loop)
                    try! channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
                    channels.append(channel)
                    return loop.makeSucceededFuture(channel)
                },
                onHealth: { [self] in health.append($0) })
            connection.start()
        }

        var channel: EmbeddedChannel { channels.last! }

        func send(_ id: Int, _ commands: [String]...) {
            connection.submit(PendingRequest(commands: commands.map { $0.map { Array($0.utf8) } }) { [self] in results[id] = $0 })
        }

        /// Every byte written since the last call, one string per write.
        func written() throws -> [String] {
            var writes: [String] = []
            while let b = try channel.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: b)) }
            return writes
        }

        func redisSends(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        func login() throws {
            #expect(try written() == ["*1\r\n$4\r\nPING\r\n"])
            try redisSends("+PONG\r\n")
        }
    }

    static func resp(_ args: String...) -> String {
        "*\(args.count)\r\n" + args.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }

    @Test func requestsOfOneTickGoOutInOneWriteAndRepliesSplitAnywhereArriveInOrder() throws {
        let h = Harness()
        try h.login()
        #expect(h.health == [.up("connected to redis://127.0.0.1:6379")])
        h.send(1, ["SET", "k", "v"])
        h.send(2, ["GET", "k"], ["ECHO", "x"])
        h.send(3, ["GET", "nothing"])
        #expect(try h.written().isEmpty)
        h.loop.run()
        #expect(try h.written() == [Self.resp("SET", "k", "v") + Self.resp("GET", "k") + Self.resp("ECHO", "x") + Self.resp("GET", "nothing")])
        // Redis's bytes arrive cut in the middle of replies.
        try h.redisSends("+OK\r\n$1\r")
        try h.redisSends("\nv\r\n$1\r\nx\r\n$-")
        #expect(h.results.count == 2)
        #expect(h.results[3] == nil)
        try h.redisSends("1\r\n")
        #expect(try h.results[1]?.get() == [.status("OK")])
        #expect(try h.results[2]?.get() == [.string(Array("v".utf8)), .string(Array("x".utf8))])
        #expect(try h.results[3]?.get() == [.null])
    }

    @Test func binaryBulkRepliesAreReadWithTheirLength() throws {
        let h = Harness()
        try h.login()
        h.send(1, ["GET", "k"])
        h.loop.run()
        _ = try h.written()
        try h.channel.writeInbound(ByteBuffer(bytes: Array("$4\r\n".utf8) + [0, 13, 10, 0] + Array("\r\n".utf8)))
        #expect(try h.results[1]?.get() == [.string([0, 13, 10, 0])])
    }

    @Test func aDeadlineFailsTheCallerAndItsLateReplyIsDropped() throws {
        let h = Harness()
        try h.login()
        h.send(1, ["GET", "slow"])
        h.loop.run()
        h.loop.advanceTime(by: .milliseconds(49))
        #expect(h.results[1] == nil)
        h.loop.advanceTime(by: .milliseconds(1))
        #expect(throws: RedisError.self) { try h.results[1]?.get() }
        h.send(2, ["GET", "fast"])
        h.loop.run()
        try h.redisSends("$4\r\nlate\r\n$4\r\nmine\r\n")
        #expect(try h.results[2]?.get() == [.string(Array("mine".utf8))])
    }

    @Test func missesTakeItDownOneProbeBringsItBackWithOneChangeEach() throws {
        let h = Harness(trip: 3)
        try h.login()
        for id in 1...3 { h.send(id, ["PING"]) }
        h.loop.run()
        _ = try h.written()
        h.loop.advanceTime(by: .milliseconds(50))
        #expect(h.health.count == 2)
        guard case .down = h.health.last else { return #expect(Bool(false)) }
        // The probe went out at once.
        #expect(try h.written() == [Self.resp("PING")])
        h.send(4, ["PING"])
        #expect(throws: RedisError.self) { try h.results[4]?.get() }
        try h.redisSends("+PONG\r\n+PONG\r\n+PONG\r\n")
        #expect(h.health.count == 2)
        try h.redisSends("+PONG\r\n")
        #expect(h.health.count == 3)
        h.send(5, ["PING"])
        h.loop.run()
        try h.redisSends("+PONG\r\n")
        #expect(try h.results[5]?.get() == [.status("PONG")])
    }

    @Test func aProbeUnansweredForItsTimeoutClosesTheSocketAndReconnects() throws {
        let h = Harness(trip: 1)
        try h.login()
        h.send(1, ["PING"])
        h.loop.run()
        _ = try h.written()
        h.loop.advanceTime(by: .milliseconds(50))
        #expect(try h.written() == [Self.resp("PING")])
        h.loop.advanceTime(by: .milliseconds(4999))
        #expect(h.channels.count == 1)
        h.loop.advanceTime(by: .milliseconds(1))
        // Closed, and made again at once.
        h.loop.run()
        #expect(h.channels.count == 2)
        try h.login()
        guard case .up = h.health.last else { return #expect(Bool(false)) }
        #expect(h.health.count == 3)
    }

    @Test func aClosedSocketFailsWhatWasInFlightAndReconnects() throws {
        let h = Harness()
        try h.login()
        h.send(1, ["GET", "k"])
        h.loop.run()
        try h.channel.close().wait()
        h.loop.run()
        #expect(throws: RedisError.self) { try h.results[1]?.get() }
        guard case .down = h.health.last else { return #expect(Bool(false)) }
        // The first reconnect is immediate.
        h.loop.run()
        #expect(h.channels.count == 2)
        try h.login()
        guard case .up = h.health.last else { return #expect(Bool(false)) }
        #expect(h.health.count == 3)
    }

    @Test func aProtocolErrorClosesTheSocket() throws {
        let h = Harness()
        try h.login()
        h.send(1, ["GET", "k"])
        h.loop.run()
        try? h.redisSends("?garbage\r\n")
        h.loop.run()
        guard case .failure(let e) = h.results[1] else { return #expect(Bool(false)) }
        #expect(e.kind == .protocol)
        #expect(h.channels.count == 2)
    }
}
