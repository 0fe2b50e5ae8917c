import NIOCore
import Testing

@testable import Hiredis

/// The connection's state machine alone: events in, actions out, no network.
@Suite struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<Int>

    static func settings(endpoint: RedisEndpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379)), trip: Int = 3, maxBatch: Int = 256) -> Machine.Settings {
        .init(
            endpoint: endpoint, tripAfterMisses: trip, probeInterval: .milliseconds(20), probeTimeout: .seconds(5), reconnectMin: .milliseconds(10),
            fastReconnectMax: .milliseconds(100), fastReconnectWindow: .seconds(10), reconnectMax: .seconds(2), maxBatch: maxBatch)
    }

    /// A machine that has connected and logged in.
    static func ready(trip: Int = 3, maxBatch: Int = 256) -> Machine {
        var m = Machine(settings: settings(trip: trip, maxBatch: maxBatch))
        let r1 = m.connected()
        #expect(r1 == [["PING"]])
        guard case .ready(let queued, let health) = m.replyReceived(.status("PONG")) else {
            Issue.record("not ready")
            return m
        }
        #expect(queued.isEmpty)
        #expect(health == .up("connected to redis://127.0.0.1:6379"))
        return m
    }

    @Test func loginSendsAuthSelectAndPingThenWritesWhatWaited() {
        let endpoint = RedisEndpoint(address: .tcp(host: "h", port: 1), username: "ops", password: "pw", database: 3)
        var m = Machine(settings: Self.settings(endpoint: endpoint))
        guard case .wait = m.send(id: 1, waiter: 10, commands: 1) else { return #expect(Bool(false)) }
        guard case .wait = m.send(id: 2, waiter: 20, commands: 2) else { return #expect(Bool(false)) }
        let r2 = m.connected()
        #expect(r2 == [["AUTH", "ops", "pw"], ["SELECT", "3"], ["PING"]])
        guard case .none = m.replyReceived(.status("OK")) else { return #expect(Bool(false)) }
        guard case .none = m.replyReceived(.status("OK")) else { return #expect(Bool(false)) }
        guard case .ready(let waiters, let health) = m.replyReceived(.status("PONG")) else { return #expect(Bool(false)) }
        #expect(waiters == [10, 20])
        #expect(health != nil)
        #expect(m.phase == .ready)
    }

    @Test func aRefusedLoginClosesTheSocket() {
        let endpoint = RedisEndpoint(address: .tcp(host: "h", port: 1), password: "wrong")
        var m = Machine(settings: Self.settings(endpoint: endpoint))
        _ = m.connected()
        guard case .close(let error) = m.replyReceived(.error("WRONGPASS invalid username-password pair")) else {
            return #expect(Bool(false))
        }
        #expect(error.kind == .handshake)
        #expect(error.message.contains("AUTH refused"))
    }

    @Test func repliesGoToRequestsInOrderAndPipelinesCollectAll() {
        var m = Self.ready()
        guard case .write(.scheduleTick) = m.send(id: 1, waiter: 1, commands: 2) else { return #expect(Bool(false)) }
        guard case .write(.alreadyScheduled) = m.send(id: 2, waiter: 2, commands: 1) else { return #expect(Bool(false)) }
        m.flushed()
        guard case .none = m.replyReceived(.integer(1)) else { return #expect(Bool(false)) }
        guard case .succeed(1, let first) = m.replyReceived(.integer(2)) else { return #expect(Bool(false)) }
        #expect(first == [.integer(1), .integer(2)])
        guard case .succeed(2, let second) = m.replyReceived(.error("ERR x")) else { return #expect(Bool(false)) }
        #expect(second == [.error("ERR x")])
        // A reply nobody asked for means the stream is out of step: close.
        guard case .close(let e) = m.replyReceived(.status("OK")) else { return #expect(Bool(false)) }
        #expect(e.kind == .protocol)
    }

    @Test func aFullBatchIsFlushedAtOnce() {
        var m = Self.ready(maxBatch: 2)
        guard case .write(.scheduleTick) = m.send(id: 1, waiter: 1, commands: 1) else { return #expect(Bool(false)) }
        guard case .write(.now) = m.send(id: 2, waiter: 2, commands: 1) else { return #expect(Bool(false)) }
    }

    @Test func aLateReplyIsDroppedAndTheNextRequestGetsItsOwn() {
        var m = Self.ready()
        _ = m.send(id: 1, waiter: 1, commands: 2)
        _ = m.send(id: 2, waiter: 2, commands: 1)
        guard case .fail(1, let error, false, nil) = m.deadlineFired(id: 1) else { return #expect(Bool(false)) }
        #expect(error.kind == .timeout)
        // A deadline firing after the reply came (a cancelled task that ran anyway) does nothing.
        guard case .none = m.deadlineFired(id: 99) else { return #expect(Bool(false)) }
        guard case .none = m.replyReceived(.string([1])) else { return #expect(Bool(false)) }
        guard case .none = m.replyReceived(.string([2])) else { return #expect(Bool(false)) }
        guard case .succeed(2, let replies) = m.replyReceived(.string([3])) else { return #expect(Bool(false)) }
        #expect(replies == [.string([3])])
        #expect(m.consecutiveMisses == 0)
    }

    @Test func consecutiveMissesTripTheBreakerAndOneProbeBringsItBack() {
        var m = Self.ready(trip: 3)
        for id in 1...4 { _ = m.send(id: UInt64(id), waiter: id, commands: 1) }
        guard case .fail(_, _, false, nil) = m.deadlineFired(id: 1) else { return #expect(Bool(false)) }
        guard case .fail(_, _, false, nil) = m.deadlineFired(id: 2) else { return #expect(Bool(false)) }
        guard case .fail(3, _, true, .down(let why)) = m.deadlineFired(id: 3) else { return #expect(Bool(false)) }
        #expect(why.contains("missed 3 deadlines"))
        #expect(m.isDown)
        // Down: a new request fails at once, and a miss of one in flight neither trips nor probes again.
        guard case .fail(let e) = m.send(id: 5, waiter: 5, commands: 1) else { return #expect(Bool(false)) }
        #expect(e.kind == .unavailable && e.message.contains("store down"))
        guard case .fail(4, _, false, nil) = m.deadlineFired(id: 4) else { return #expect(Bool(false)) }
        // Redis answers the four expired requests, then the probe, with an error (still loading).
        for _ in 1...4 {
            guard case .none = m.replyReceived(.status("PONG")) else { return #expect(Bool(false)) }
        }
        guard case .probeAgain(let after) = m.replyReceived(.error("LOADING")) else { return #expect(Bool(false)) }
        #expect(after == .milliseconds(20))
        let r3 = m.probeTimerFired()
        #expect(r3)
        // One probe at a time.
        let r4 = m.probeTimerFired()
        #expect(!r4)
        guard case .recovered(.up) = m.replyReceived(.status("PONG")) else { return #expect(Bool(false)) }
        #expect(!m.isDown)
        guard case .write = m.send(id: 6, waiter: 6, commands: 1) else { return #expect(Bool(false)) }
    }

    @Test func aLostConnectionFailsEveryCallerAndReconnectsFastThenBacksOff() {
        var m = Self.ready()
        _ = m.send(id: 1, waiter: 1, commands: 1)
        _ = m.send(id: 2, waiter: 2, commands: 1)
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        guard case .reconnect(.zero, let failed, _, .down) = m.connectionLost(RedisError(.eof, "closed"), now: now) else {
            return #expect(Bool(false))
        }
        #expect(failed == [1, 2])
        guard case .fail(let e) = m.send(id: 3, waiter: 3, commands: 1) else { return #expect(Bool(false)) }
        #expect(e.kind == .unavailable)
        // Attempts fail for a while: waits of tens of ms, never above 100 ms in the first 10 s ...
        var waits: [Int64] = []
        for _ in 0..<7 {
            let r5 = m.reconnectTimerFired()
            #expect(r5)
            now = now + .milliseconds(50)
            guard case .reconnect(let after, [], _, nil) = m.connectionLost(RedisError(.connect, "refused"), now: now) else {
                return #expect(Bool(false))
            }
            waits.append(after.nanoseconds / 1_000_000)
        }
        #expect(waits == [10, 20, 40, 80, 100, 100, 100])
        // ... then doubling to the maximum.
        now = now + .seconds(10)
        waits = []
        for _ in 0..<6 {
            let r6 = m.reconnectTimerFired()
            #expect(r6)
            guard case .reconnect(let after, _, _, nil) = m.connectionLost(RedisError(.connect, "refused"), now: now) else {
                return #expect(Bool(false))
            }
            waits.append(after.nanoseconds / 1_000_000)
        }
        #expect(waits == [200, 400, 800, 1600, 2000, 2000])
        // Back: up once, and the next outage starts fast again.
        let r7 = m.reconnectTimerFired()
        #expect(r7)
        _ = m.connected()
        guard case .ready(_, .up) = m.replyReceived(.status("PONG")) else { return #expect(Bool(false)) }
        guard case .reconnect(.zero, _, _, .down) = m.connectionLost(RedisError(.eof, "closed"), now: now) else {
            return #expect(Bool(false))
        }
    }

    @Test func shutdownFailsEveryCallerAndRefusesNewOnes() {
        var m = Self.ready()
        _ = m.send(id: 1, waiter: 1, commands: 1)
        let r8 = m.shutdown()
        #expect(r8 == [1])
        guard case .fail(let e) = m.send(id: 2, waiter: 2, commands: 1) else { return #expect(Bool(false)) }
        #expect(e.message.contains("shut down"))
        guard case .none = m.connectionLost(RedisError(.eof, "closed"), now: .now()) else { return #expect(Bool(false)) }
    }
}
