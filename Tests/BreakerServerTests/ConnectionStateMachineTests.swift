@testable import BreakerServer
import RESP
import Testing

/// The connection's state machine alone: no channel, no network, no store.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<String>

    /// The ids the actions start, and the replies they write, as text.
    private static func summary(_ actions: [Machine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .run(let id, let request, _): return "run \(id) \(request)"
            case .write(let result): return "write " + result.replies.map { "\($0)" }.joined(separator: ",")
            case .close(let linger): return linger ? "close linger" : "close"
            }
        }
    }

    private static func reply(_ text: String, close: Bool = false) -> CommandResult {
        CommandResult(.simpleString(text), close: close)
    }

    @Test func concurrentRequestsRunAtOnceAndAreWrittenInOrder() {
        var m = Machine(maxInFlight: 8)
        #expect(Self.summary(m.received("a", scheduling: .concurrent)) == ["run 0 a"])
        #expect(Self.summary(m.received("b", scheduling: .concurrent)) == ["run 1 b"])
        #expect(Self.summary(m.received("c", scheduling: .concurrent)) == ["run 2 c"])
        // c and b finish first: nothing is written until a, then all three in order.
        #expect(m.completed(id: 2, result: Self.reply("C")).isEmpty)
        #expect(m.completed(id: 1, result: Self.reply("B")).isEmpty)
        #expect(Self.summary(m.completed(id: 0, result: Self.reply("A"))) == [
            "write simpleString(\"A\")", "write simpleString(\"B\")", "write simpleString(\"C\")",
        ])
        #expect(m.isIdle)
    }

    @Test func anExclusiveRequestIsABarrier() {
        var m = Machine(maxInFlight: 8)
        _ = m.received("a", scheduling: .concurrent)
        // AUTH waits for a; b waits for AUTH.
        #expect(m.received("auth", scheduling: .exclusive).isEmpty)
        #expect(m.received("b", scheduling: .concurrent).isEmpty)
        #expect(Self.summary(m.completed(id: 0, result: Self.reply("A"))) == ["write simpleString(\"A\")", "run 1 auth"])
        #expect(Self.summary(m.completed(id: 1, result: Self.reply("OK"))) == ["write simpleString(\"OK\")", "run 2 b"])
    }

    @Test func inFlightIsBounded() {
        var m = Machine(maxInFlight: 2)
        #expect(m.received("a", scheduling: .concurrent).count == 1)
        #expect(m.received("b", scheduling: .concurrent).count == 1)
        #expect(m.received("c", scheduling: .concurrent).isEmpty)
        #expect(m.outstanding == 3)
        #expect(Self.summary(m.completed(id: 1, result: Self.reply("B"))) == ["run 2 c"])
    }

    @Test func quitAnswersWhatCameBeforeAndRunsNothingAfter() {
        var m = Machine(maxInFlight: 8)
        _ = m.received("a", scheduling: .concurrent)
        _ = m.received("quit", scheduling: .exclusive)
        _ = m.received("b", scheduling: .concurrent)
        #expect(Self.summary(m.completed(id: 0, result: Self.reply("A"))) == ["write simpleString(\"A\")", "run 1 quit"])
        #expect(Self.summary(m.completed(id: 1, result: Self.reply("OK", close: true))) == ["write simpleString(\"OK\")", "close linger"])
        #expect(!m.isAccepting)
        #expect(m.received("c", scheduling: .concurrent).isEmpty)
    }

    @Test func aProtocolErrorComesAfterTheRepliesBeforeItThenALingeringClose() {
        var m = Machine(maxInFlight: 8)
        _ = m.received("a", scheduling: .concurrent)
        _ = m.received("b", scheduling: .concurrent)
        #expect(m.protocolError("Protocol error: unbalanced quotes in request").isEmpty)
        #expect(m.received("after", scheduling: .concurrent).isEmpty)
        #expect(Self.summary(m.completed(id: 1, result: Self.reply("B"))).isEmpty)
        #expect(Self.summary(m.completed(id: 0, result: Self.reply("A"))) == [
            "write simpleString(\"A\")", "write simpleString(\"B\")",
            "write error(\"ERR Protocol error: unbalanced quotes in request\")", "close linger",
        ])
    }

    @Test func aProtocolErrorOnAnIdleConnectionIsWrittenAtOnce() {
        var m = Machine(maxInFlight: 8)
        #expect(Self.summary(m.protocolError("Protocol error: x")) == ["write error(\"ERR Protocol error: x\")", "close linger"])
    }

    @Test func eofMidPipelineAnswersEverythingThenCloses() {
        var m = Machine(maxInFlight: 1)
        _ = m.received("a", scheduling: .concurrent)
        _ = m.received("b", scheduling: .concurrent)
        #expect(m.inputClosed().isEmpty)
        #expect(Self.summary(m.completed(id: 0, result: Self.reply("A"))) == ["write simpleString(\"A\")", "run 1 b"])
        #expect(Self.summary(m.completed(id: 1, result: Self.reply("B"))) == ["write simpleString(\"B\")", "close"])
    }

    @Test func shutdownDrainsWhatIsInFlight() {
        var m = Machine(maxInFlight: 8)
        _ = m.received("a", scheduling: .concurrent)
        #expect(m.quiesce().isEmpty)
        #expect(m.received("late", scheduling: .concurrent).isEmpty)
        #expect(Self.summary(m.completed(id: 0, result: Self.reply("A"))) == ["write simpleString(\"A\")", "close linger"])
        var idle = Machine(maxInFlight: 8)
        #expect(Self.summary(idle.quiesce()) == ["close linger"])
    }

    @Test func aCompletionAfterCloseIsIgnored() {
        var m = Machine(maxInFlight: 8)
        _ = m.received("a", scheduling: .concurrent)
        m.closed()
        #expect(m.completed(id: 0, result: Self.reply("A")).isEmpty)
        #expect(m.completed(id: 7, result: Self.reply("?")).isEmpty)
    }
}
