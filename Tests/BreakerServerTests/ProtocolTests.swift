import BreakerServer
import BreakerServerTestSupport
import Foundation
import RESP
import Testing

/// Framing: pipelines answered in order, inline lines as nc sends them, and every kind of bad
/// input answered with a protocol error that closes only the connection that sent it.
@Suite struct ProtocolTests {
    @Test func pipelinedFramesInOneWriteAreAnsweredInOrder() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        var frames = TestClient.frame(["HELLO", "3"]) + TestClient.frame(["CLIENT", "SETINFO", "LIB-NAME", "x"])
        for i in 0..<50 { frames += TestClient.frame(["PING", "m\(i)"]) }
        frames += TestClient.frame(["ACQUIRE", "pipe"]) + TestClient.frame(["STATE", "pipe"]) + TestClient.frame(["PING"])
        try await c.send(frames)
        guard case .map = try await c.read() else {
            Issue.record("HELLO did not answer first")
            return
        }
        #expect(try await c.read() == .simpleString("OK"))
        for i in 0..<50 { #expect(try await c.read() == .bulk("m\(i)")) }
        #expect(try await c.read().text?.hasPrefix("PERMIT ") == true)
        #expect(try await c.read().text?.hasPrefix("pipe closed ") == true)
        #expect(try await c.read() == .simpleString("PONG"))
    }

    @Test func inlineCommandsAsNcSendsThem() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await c.send("PING\nacquire inline-one\r\n\nPING \"two words\"\n")
        #expect(try await c.read() == .simpleString("PONG"))
        #expect(try await c.read().text?.hasPrefix("PERMIT ") == true)
        #expect(try await c.read() == .bulk("two words"))
        // A frame split across writes waits for its rest.
        try await c.send("*2\r\n$4\r\nPING\r\n$3\r\nab")
        try await c.send("c\r\n")
        #expect(try await c.read() == .bulk("abc"))
    }

    @Test func everythingSentBeforeEOFIsAnswered() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await c.send("PING\nACQUIRE eof\nSTATE eof\n")
        try await c.finishSending()
        #expect(try await c.read() == .simpleString("PONG"))
        #expect(try await c.read().text?.hasPrefix("PERMIT ") == true)
        #expect(try await c.read().text?.hasPrefix("eof closed ") == true)
        #expect(try await c.isClosedByServer())
    }

    @Test(arguments: [
        ("PING \"unbalanced\n", "ERR Protocol error: unbalanced quotes in request"),
        ("*1\r\n$10\r\nPING\r\n*1\r\n$4\r\nPING\r\n", "ERR Protocol error: bulk data not terminated by CRLF"),
        ("*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"),
        ("*2000\r\n", "ERR Protocol error: invalid multibulk length"),
        ("*1\r\n\u{01}\u{02}\u{03}\r\n", "ERR Protocol error: expected '$', got '\\x01'"),
    ])
    func badFramesCloseOnlyTheirConnection(input: String, expected: String) async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let bad = try await t.connect()
        let good = try await t.connect()
        try await bad.send("PING\r\n" + input)
        #expect(try await bad.read() == .simpleString("PONG"))
        #expect(try await bad.read() == .error(expected))
        #expect(try await bad.isClosedByServer())
        #expect(try await good.command("PING") == .simpleString("PONG"))
        #expect(try await good.command("ACQUIRE", "survivor").text?.hasPrefix("PERMIT ") == true)
    }

    @Test func oversizedInlineLineAndTooManyArgumentsAreProtocolErrors() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let long = try await t.connect()
        try await long.send(String(repeating: "a", count: 70 * 1024))
        #expect(try await long.read() == .error("ERR Protocol error: too big inline request"))
        #expect(try await long.isClosedByServer())

        let many = try await t.connect()
        try await many.send("PING" + String(repeating: " x", count: 1100) + "\n")
        #expect(try await many.read().text?.hasPrefix("ERR Protocol error: too many arguments") == true)
        #expect(try await many.isClosedByServer())

        let frames = try await t.connect()
        try await frames.send("*1025\r\n")
        #expect(try await frames.read() == .error("ERR Protocol error: invalid multibulk length"))

        let binary = try await t.connect()
        try await binary.send(bytes: (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) } + [0x22, 0x0a])
        let reply = try await binary.read()
        #expect(reply.text?.hasPrefix("ERR") == true, "\(reply)")

        let other = try await t.connect()
        #expect(try await other.command("PING") == .simpleString("PONG"))
    }

    @Test func theConnectionOverTheLimitIsRefused() async throws {
        let logs = LogCapture()
        let t = try await TestServer.start(logs: logs) { $0.maxClients = 2 }
        defer { Task { await t.stop() } }
        let one = try await t.connect()
        let two = try await t.connect()
        #expect(try await one.command("PING") == .simpleString("PONG"))
        #expect(try await two.command("PING") == .simpleString("PONG"))
        let three = try await t.connect()
        #expect(try await three.read() == .error("ERR max number of clients reached"))
        #expect(try await three.isClosedByServer())
        #expect(try await one.command("PING") == .simpleString("PONG"))
        #expect(logs.contains("warning refused a connection", "max=2"), "\(logs.all)")
        #expect(try await one.command("INFO").text?.contains("rejected_connections:1\r\n") == true)
    }

    @Test func aFrameLargerThanTheInputBufferIsAProtocolError() async throws {
        let t = try await TestServer.start { $0.maxInputBufferBytes = 256 * 1024 }
        defer { Task { await t.stop() } }
        let big = try await t.connect()
        let chunk = String(repeating: "b", count: 200_000)
        try await big.send("*3\r\n$4\r\nPING\r\n$200000\r\n\(chunk)\r\n$200000\r\n\(chunk)\r\n")
        let reply = try await big.read()
        #expect(reply.text?.hasPrefix("ERR Protocol error: request larger than") == true, "\(reply)")
        #expect(try await big.isClosedByServer())
    }

    @Test func aClientThatNeverReadsIsBounded() async throws {
        let t = try await TestServer.start { $0.maxOutputBytes = 64 * 1024 }
        defer { Task { await t.stop() } }
        let greedy = try await t.connect()
        // 20,000 PINGs with 1 KiB messages: 20 MiB of replies that the peer never reads. The server
        // stops reading its requests instead of buffering replies without bound.
        let message = String(repeating: "z", count: 1024)
        let frame = TestClient.frame(["PING", message])
        let batch = String(repeating: frame, count: 200)
        let sender = Task {
            for _ in 0..<100 { try await greedy.send(batch) }
        }
        try await Task.sleep(for: .milliseconds(500))
        let other = try await t.connect()
        #expect(try await other.command("PING") == .simpleString("PONG"))
        sender.cancel()
    }

    /// A bad frame with more data behind it in the same write: the replies before it, the error,
    /// then EOF — not a reset that makes the peer drop what it had not read (the output side is
    /// shut first and the input drained: a lingering close).
    @Test func repliesBeforeABadFrameSurviveTheDataBehindIt() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let tail = String(repeating: "\r\n", count: 10_000)
        for i in 0..<20 {
            let c = try await t.connect()
            try await c.send("ACQUIRE linger-\(i)\r\nPING\r\nPING \"unbalanced\r\n" + tail)
            #expect(try await c.read().text?.hasPrefix("PERMIT ") == true)
            #expect(try await c.read() == .simpleString("PONG"))
            #expect(try await c.read() == .error("ERR Protocol error: unbalanced quotes in request"))
            #expect(try await c.isClosedByServer())
        }
    }

    @Test func quitWithDataBehindItStillDeliversOK() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await c.send("PING\r\nQUIT\r\n" + String(repeating: "PING\r\n", count: 5000))
        #expect(try await c.read() == .simpleString("PONG"))
        #expect(try await c.read() == .simpleString("OK"))
        #expect(try await c.isClosedByServer())
    }

    @Test func aHalfSentFrameDoesNotHoldItsConnectionForever() async throws {
        let logs = LogCapture()
        let t = try await TestServer.start(logs: logs) { $0.requestTimeoutMs = 200 }
        defer { Task { await t.stop() } }
        let slow = try await t.connect()
        try await slow.send("*2\r\n$7\r\nACQUIRE\r\n$4\r\nha")
        // Waits for the close itself (the socket's own timeout bounds the wait), not for a time.
        #expect(try await slow.read() == .error("ERR Protocol error: request not completed within 200 ms"))
        #expect(try await slow.isClosedByServer())
        let other = try await t.connect()
        #expect(try await other.command("INFO").text?.contains("closed_partial_requests:1\r\n") == true)
        #expect(logs.contains("closed a connection", "reason=partial_request"), "\(logs.all)")
    }

    @Test func connectionsPerPeerAreCappedWhenAsked() async throws {
        let t = try await TestServer.start { $0.maxClientsPerPeer = 2 }
        defer { Task { await t.stop() } }
        let one = try await t.connect()
        let two = try await t.connect()
        #expect(try await one.command("PING") == .simpleString("PONG"))
        #expect(try await two.command("PING") == .simpleString("PONG"))
        let three = try await t.connect()
        #expect(try await three.read() == .error("ERR max number of clients per peer address reached"))
        #expect(try await three.isClosedByServer())
        // A slot freed is a slot to be had again.
        try await two.send("QUIT\r\n")
        #expect(try await two.read() == .simpleString("OK"))
        #expect(try await two.isClosedByServer())
        // The server lingers until the peer closes its side too.
        try await two.finishSending()
        var admitted = false
        for _ in 0..<200 where !admitted {
            let again = try await t.connect()
            if case .simpleString("PONG")? = try? await again.command("PING") { admitted = true }
        }
        #expect(admitted)
    }

    @Test func anAdminGetsInWhenEveryClientSlotIsTaken() async throws {
        let t = try await TestServer.start { c in
            c.maxClients = 1
            c.adminPassword = "root-secret"
            c.adminReservedClients = 1
        }
        defer { Task { await t.stop() } }
        let replica = try await t.connect()
        #expect(try await replica.command("PING") == .simpleString("PONG"))
        // In the reserve, anything but an admin's AUTH is refused as Redis refuses a full server.
        let other = try await t.connect()
        #expect(try await other.command("PING") == .simpleString("PONG"))
        #expect(try await other.command("ACQUIRE", "x") == .error("ERR max number of clients reached"))
        #expect(try await other.isClosedByServer())
        try await other.finishSending()
        // Its slot is free once the server has seen the close (a moment later, on its own loop).
        var admin: TestClient?
        for _ in 0..<200 where admin == nil {
            let c = try await t.connect()
            // A refused connection is answered and closed: try again.
            if case .simpleString("OK")? = try? await c.command("AUTH", "admin", "root-secret") { admin = c }
        }
        let authed = try #require(admin)
        #expect(try await authed.command("FORCE", "reserve-x", "OPEN").text?.hasPrefix("OK open") == true)
        // Past the reserve too: refused at once.
        let more = try await t.connect()
        #expect(try await more.read() == .error("ERR max number of clients reached"))
    }
}
