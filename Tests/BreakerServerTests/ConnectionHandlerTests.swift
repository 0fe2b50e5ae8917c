@testable import BreakerServer
import Logging
import NIOCore
import NIOEmbedded
import RESP
import Synchronization
import Testing

/// `ConnectionHandler` in an `EmbeddedChannel`: no network and no store. A runner stands in for
/// the dispatcher and lets each test finish requests in the order it chooses; time is the
/// embedded loop's, moved on by the test.
@Suite struct ConnectionHandlerTests {
    /// Holds every request's completion until the test releases it. Answers AUTH, HELLO, PING and
    /// QUIT itself, as the dispatcher would, when `answerHousekeeping` is set.
    final class HeldRunner: ConnectionCommandRunner, @unchecked Sendable {
        struct Held {
            let name: String
            let session: ConnectionSession
            let done: @Sendable (CommandResult, ConnectionSession) -> Void
        }
        var held: [Held] = []
        var closes: [ConnectionCloseReason] = []
        var answerHousekeeping = false

        func scheduling(of request: RESPRequest, session: ConnectionSession) -> ConnectionStateMachine<RESPRequest>.Scheduling {
            CommandDispatcher.scheduling(of: request)
        }

        func run(
            _ request: RESPRequest, session: ConnectionSession, on eventLoop: any EventLoop,
            done: @escaping @Sendable (CommandResult, ConnectionSession) -> Void
        ) {
            let args = (0..<request.arguments.count).compactMap { request.string(at: $0) }
            if answerHousekeeping {
                var s = session
                switch request.name {
                case "QUIT": return done(CommandResult(.simpleString("OK"), close: true), s)
                case "PING": return done(CommandResult(.simpleString("PONG")), s)
                case "AUTH":
                    if args.count == 3, args[1] == "admin", args[2] == "secret" {
                        s.role = .admin
                        return done(.ok(), s)
                    }
                    return done(.error("WRONGPASS invalid username-password pair or user is disabled."), s)
                default: break
                }
            }
            held.append(Held(name: args.joined(separator: " "), session: session, done: done))
        }

        /// Finishes the held request whose text is `name` with a simple-string reply.
        func finish(_ name: String, _ reply: String, close: Bool = false) {
            guard let i = held.firstIndex(where: { $0.name == name }) else {
                Issue.record("no request '\(name)' is running; running: \(held.map(\.name))")
                return
            }
            let h = held.remove(at: i)
            h.done(CommandResult(.simpleString(reply), close: close), h.session)
        }

        var running: [String] { held.map(\.name) }

        func subscriptionsChanged(connection: Int, channels: [String], deliver: @escaping @Sendable (String, String) -> Void) {}
        func connectionEnded(_ id: Int) {}
        func connectionClosed(_ id: Int, peer: String, reason: ConnectionCloseReason) { closes.append(reason) }
    }

    /// Keeps every write's promise pending: a peer that never reads.
    final class NeverDrains: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = ByteBuffer
        var promises: [EventLoopPromise<Void>?] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            promises.append(promise)
        }
    }

    struct Harness {
        let channel: EmbeddedChannel
        let runner: HeldRunner
        var decoder = RESPReplyDecoder()
        var buffer = ByteBuffer()

        init(configure: (inout ServerConfiguration) -> Void = { _ in }, reserved: Bool = false, outbound: (any ChannelHandler)? = nil) throws {
            var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
            configure(&configuration)
            runner = HeldRunner()
            channel = EmbeddedChannel()
            if let outbound { try channel.pipeline.syncOperations.addHandler(outbound) }
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            try channel.pipeline.syncOperations.addHandler(
                ConnectionHandler(
                    runner: runner, session: ConnectionSession(id: 1, peer: "test", role: .replica),
                    limits: ConnectionLimits(configuration), reserved: reserved, logger: logger))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// Every reply written so far, as text.
        mutating func replies() throws -> [String] {
            while let chunk = try channel.readOutbound(as: ByteBuffer.self) { buffer.writeImmutableBuffer(chunk) }
            var out: [String] = []
            while let value = try decoder.decode(buffer: &buffer) {
                switch value {
                case .simpleString(let s), .error(let s): out.append(s)
                case .bulkString(let b): out.append(String(buffer: b))
                default: out.append("\(value)")
                }
            }
            return out
        }

        var isActive: Bool { channel.isActive }

        func advance(_ t: TimeAmount) { channel.embeddedEventLoop.advanceTime(by: t) }
    }

    @Test func repliesAreInRequestOrderWhenCompletionsAreNot() throws {
        var h = try Harness()
        try h.send("ACQUIRE a\r\nACQUIRE b\r\nREPORT c 1.1.1 SUCCESS\r\n")
        // All three run at once: none of them reads or changes what the others do.
        #expect(h.runner.running == ["ACQUIRE a", "ACQUIRE b", "REPORT c 1.1.1 SUCCESS"])
        h.runner.finish("REPORT c 1.1.1 SUCCESS", "C")
        h.runner.finish("ACQUIRE b", "B")
        #expect(try h.replies().isEmpty)
        h.runner.finish("ACQUIRE a", "A")
        #expect(try h.replies() == ["A", "B", "C"])
        #expect(h.isActive)
    }

    @Test func aReadWaitsForTheRequestsBeforeIt() throws {
        var h = try Harness()
        try h.send("ACQUIRE a\r\nSTATE a\r\n")
        #expect(h.runner.running == ["ACQUIRE a"])
        h.runner.finish("ACQUIRE a", "A")
        #expect(h.runner.running == ["STATE a"])
        h.runner.finish("STATE a", "a closed")
        #expect(try h.replies() == ["A", "a closed"])
    }

    @Test func aCommandThatChangesTheSessionWaitsForThoseBeforeIt() throws {
        var h = try Harness()
        try h.send("ACQUIRE a\r\nCLIENT SETNAME x\r\nACQUIRE b\r\n")
        #expect(h.runner.running == ["ACQUIRE a"])
        h.runner.finish("ACQUIRE a", "A")
        #expect(h.runner.running == ["CLIENT SETNAME x"])
        h.runner.finish("CLIENT SETNAME x", "OK")
        #expect(h.runner.running == ["ACQUIRE b"])
        h.runner.finish("ACQUIRE b", "B")
        #expect(try h.replies() == ["A", "OK", "B"])
    }

    @Test func quitInThePipelineAnswersWhatCameBeforeAndRunsNothingAfter() throws {
        var h = try Harness()
        h.runner.answerHousekeeping = true
        try h.send("ACQUIRE a\r\nQUIT\r\nACQUIRE never\r\n")
        h.runner.finish("ACQUIRE a", "A")
        #expect(try h.replies() == ["A", "OK"])
        #expect(h.runner.running.isEmpty)
        // The output side is shut (EmbeddedChannel cannot half-close, so it closes outright).
        #expect(!h.isActive)
    }

    @Test func aProtocolErrorMidPipelineComesAfterTheRepliesBeforeIt() throws {
        var h = try Harness()
        try h.send("ACQUIRE a\r\nACQUIRE b\r\nPING \"unbalanced\r\nACQUIRE never\r\n" + String(repeating: "\r\n", count: 10_000))
        #expect(h.runner.running == ["ACQUIRE a", "ACQUIRE b"])
        #expect(h.isActive)
        h.runner.finish("ACQUIRE b", "B")
        h.runner.finish("ACQUIRE a", "A")
        #expect(try h.replies() == ["A", "B", "ERR Protocol error: unbalanced quotes in request"])
        #expect(!h.isActive)
    }

    @Test func eofMidPipelineAnswersEverythingThenCloses() throws {
        var h = try Harness()
        try h.send("ACQUIRE a\r\nACQUIRE b\r\n")
        h.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(h.isActive)
        h.runner.finish("ACQUIRE a", "A")
        h.runner.finish("ACQUIRE b", "B")
        #expect(try h.replies() == ["A", "B"])
        #expect(!h.isActive)
    }

    @Test func shutdownDrainsWhatIsInFlight() throws {
        var h = try Harness()
        try h.send("ACQUIRE a\r\n")
        h.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try h.send("ACQUIRE late\r\n")
        #expect(h.runner.running == ["ACQUIRE a"])
        h.runner.finish("ACQUIRE a", "A")
        #expect(try h.replies() == ["A"])
        #expect(!h.isActive)
    }

    @Test func aClientThatNeverReadsIsClosedAtTheOutputLimit() throws {
        let stall = NeverDrains()
        let h = try Harness(configure: { $0.maxOutputBytes = 4096 }, outbound: stall)
        let big = String(repeating: "x", count: 1000)
        for i in 0..<10 {
            guard h.isActive else { break }
            try h.send("ACQUIRE \(i)\r\n")
            h.runner.finish("ACQUIRE \(i)", big)
        }
        #expect(!h.isActive)
        #expect(h.runner.closes == [.outputLimit])
    }

    @Test func aHalfSentFrameIsClosedAfterTheRequestTimeout() throws {
        var h = try Harness(configure: { $0.requestTimeoutMs = 5000 })
        try h.send("*2\r\n$7\r\nACQUIRE\r\n$3\r\nab")
        h.advance(.milliseconds(4000))
        // More bytes of the same frame do not restart its clock.
        try h.send("c")
        h.advance(.milliseconds(999))
        #expect(h.isActive)
        h.advance(.milliseconds(2))
        #expect(try h.replies() == ["ERR Protocol error: request not completed within 5000 ms"])
        #expect(!h.isActive)
        #expect(h.runner.closes == [.partialRequest])
    }

    @Test func completeFramesKeepTheConnectionWithNoIdleTimeout() throws {
        var h = try Harness(configure: { $0.requestTimeoutMs = 1000 })
        try h.send("ACQUIRE a\r\n")
        h.runner.finish("ACQUIRE a", "A")
        h.advance(.seconds(3600))
        #expect(h.isActive)
        #expect(try h.replies() == ["A"])
    }

    @Test func anIdleConnectionIsClosedOnlyWithNothingInFlight() throws {
        let h = try Harness(configure: { $0.idleTimeoutSeconds = 10 })
        try h.send("ACQUIRE slow\r\n")
        h.advance(.seconds(30))
        // A request still running is not idleness.
        #expect(h.isActive)
        h.runner.finish("ACQUIRE slow", "A")
        h.advance(.seconds(9))
        #expect(h.isActive)
        h.advance(.seconds(2))
        #expect(!h.isActive)
        #expect(h.runner.closes == [.idle])
    }

    @Test func theAdminReserveServesOnlyAnAdminsAuth() throws {
        var refused = try Harness(reserved: true)
        refused.runner.answerHousekeeping = true
        try refused.send("ACQUIRE a\r\n")
        #expect(try refused.replies() == ["ERR max number of clients reached"])
        #expect(!refused.isActive)

        var wrong = try Harness(reserved: true)
        wrong.runner.answerHousekeeping = true
        try wrong.send("AUTH admin nope\r\n")
        #expect(try wrong.replies() == ["WRONGPASS invalid username-password pair or user is disabled."])
        #expect(!wrong.isActive)

        var admin = try Harness(reserved: true)
        admin.runner.answerHousekeeping = true
        try admin.send("AUTH admin secret\r\nFORCE a OPEN\r\n")
        #expect(admin.runner.running == ["FORCE a OPEN"])
        admin.runner.finish("FORCE a OPEN", "OK open mode=forced_open")
        #expect(try admin.replies() == ["OK", "OK open mode=forced_open"])
        admin.advance(.seconds(60))
        #expect(admin.isActive)

        let silent = try Harness(configure: { $0.requestTimeoutMs = 2000 }, reserved: true)
        silent.advance(.milliseconds(2001))
        #expect(!silent.isActive)
        #expect(silent.runner.closes == [.reserveUnauthenticated])
    }
}
