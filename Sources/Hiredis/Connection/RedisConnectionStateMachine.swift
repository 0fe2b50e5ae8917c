import NIOCore

/// The life of one Redis connection of an event loop, as a plain value: its socket (connecting,
/// logging in, ready, waiting to reconnect), the requests written to it in order, and the store's
/// own breaker (down after a lost socket or several deadline misses in a row, probing until Redis
/// answers again). Every event method returns what its owner must do; the owner does the I/O and
/// the timers, so the machine is tested without a network.
///
/// `Waiter` is whatever the owner resumes with a request's replies.
struct RedisConnectionStateMachine<Waiter> {
    struct Settings {
        var endpoint: RedisEndpoint
        /// After this many deadline misses in a row the connection counts as down (0: never).
        var tripAfterMisses: Int
        /// Between two probes that got an error reply.
        var probeInterval: TimeAmount
        /// A probe unanswered this long closes the socket (a reconnect follows).
        var probeTimeout: TimeAmount
        /// Reconnect waits: the first after the immediate attempt, doubled up to `fastReconnectMax`
        /// for `fastReconnectWindow` after the loss, then doubled up to `reconnectMax`.
        var reconnectMin: TimeAmount
        var fastReconnectMax: TimeAmount
        var fastReconnectWindow: TimeAmount
        var reconnectMax: TimeAmount
        /// A write carries at most this many requests before it is flushed.
        var maxBatch: Int
    }

    enum Phase: Equatable {
        /// A connect is under way.
        case connecting
        /// The login commands (AUTH, SELECT, PING) are written; their replies are awaited.
        case loggingIn
        case ready
        /// Tripped by deadline misses on a live socket: one probe PING at a time.
        case probing(probeInFlight: Bool)
        /// No socket; a reconnect timer is set.
        case waitingToReconnect
        case shutDown
    }

    /// A change of the connection's health, for the client to pass on.
    enum Health: Equatable {
        case up(String)
        case down(String)
    }

    enum Slot {
        case request(id: UInt64, waiter: Waiter, expected: Int, replies: [RedisReply])
        /// A request whose caller already got `.timeout`: its replies are read and dropped.
        case expired(remaining: Int)
        case login(LoginStep)
        case probe
    }

    enum LoginStep: Equatable { case auth, select, ping }

    let settings: Settings
    private(set) var phase: Phase = .connecting
    /// Why the connection is down, while it is; requests then fail at once.
    private(set) var downReason: String?
    /// Requests made before the first connection was ready; they go out when it is.
    private(set) var queued: CircularBuffer<(id: UInt64, waiter: Waiter, count: Int)> = []
    private(set) var inFlight: CircularBuffer<Slot> = []
    private(set) var consecutiveMisses = 0
    private var flushScheduled = false
    private var unflushed = 0
    private var backoff: ReconnectBackoff
    private var everReady = false

    init(settings: Settings) {
        self.settings = settings
        backoff = ReconnectBackoff(
            min: settings.reconnectMin, fastMax: settings.fastReconnectMax, fastWindow: settings.fastReconnectWindow,
            max: settings.reconnectMax)
    }

    var isDown: Bool { downReason != nil }

    // MARK: Requests

    enum Flush: Equatable {
        /// A flush is already scheduled for this loop tick.
        case alreadyScheduled
        /// Schedule one at the end of this tick.
        case scheduleTick
        /// The write holds `maxBatch` requests: flush now.
        case now
    }

    enum SendAction {
        /// Format the request into the outbound buffer.
        case write(Flush)
        /// Keep it until the first connection is ready (its deadline runs meanwhile).
        case wait
        case fail(RedisError)
    }

    mutating func send(id: UInt64, waiter: Waiter, commands: Int) -> SendAction {
        if phase == .shutDown { return .fail(RedisError(.unavailable, "the Redis client was shut down")) }
        if let downReason {
            return .fail(RedisError(.unavailable, "store down: \(settings.endpoint) \(downReason); failing at once while probing"))
        }
        switch phase {
        case .ready:
            inFlight.append(.request(id: id, waiter: waiter, expected: commands, replies: []))
            return .write(noteWrite())
        case .connecting, .loggingIn:
            queued.append((id, waiter, commands))
            return .wait
        case .shutDown:
            return .fail(RedisError(.unavailable, "the Redis client was shut down"))
        case .probing, .waitingToReconnect:
            // Not reached: both phases are down.
            return .fail(RedisError(.unavailable, "not connected to \(settings.endpoint)"))
        }
    }

    private mutating func noteWrite() -> Flush {
        unflushed += 1
        if unflushed >= settings.maxBatch {
            unflushed = 0
            return .now
        }
        if flushScheduled { return .alreadyScheduled }
        flushScheduled = true
        return .scheduleTick
    }

    /// The end-of-tick flush ran (or a flush was made now).
    mutating func flushed() {
        flushScheduled = false
        unflushed = 0
    }

    enum DeadlineAction {
        case none
        /// Fail the caller; if `probe`, the connection just went down: write one probe and flush.
        case fail(Waiter, RedisError, probe: Bool, health: Health?)
    }

    mutating func deadlineFired(id: UInt64) -> DeadlineAction {
        let error = RedisError(.timeout, "\(settings.endpoint) did not answer in time")
        if let i = queued.firstIndex(where: { $0.id == id }) {
            let waiter = queued.remove(at: i).waiter
            return .fail(waiter, error, probe: false, health: nil)
        }
        // Deadlines run in request order, so the one that fires is near the head.
        guard
            let i = inFlight.firstIndex(where: {
                if case .request(let rid, _, _, _) = $0 { return rid == id }
                return false
            }), case .request(_, let waiter, let expected, let replies) = inFlight[i]
        else { return .none }
        inFlight[i] = .expired(remaining: expected - replies.count)
        guard phase == .ready else { return .fail(waiter, error, probe: false, health: nil) }
        consecutiveMisses += 1
        guard settings.tripAfterMisses > 0, consecutiveMisses >= settings.tripAfterMisses else {
            return .fail(waiter, error, probe: false, health: nil)
        }
        let reason = "missed \(consecutiveMisses) deadlines in a row"
        downReason = reason
        phase = .probing(probeInFlight: true)
        inFlight.append(.probe)
        return .fail(waiter, error, probe: true, health: .down("\(settings.endpoint) \(reason)"))
    }

    // MARK: Replies

    enum ReplyAction {
        case none
        case succeed(Waiter, [RedisReply])
        /// Logged in: write the queued requests (in order) and flush.
        case ready(write: [Waiter], health: Health?)
        /// The probe was answered: the connection is up again.
        case recovered(Health)
        /// The probe got an error reply: probe again after the interval.
        case probeAgain(after: TimeAmount)
        /// Close the channel; `channelClosed` follows with this reason.
        case close(RedisError)
    }

    mutating func replyReceived(_ reply: RedisReply) -> ReplyAction {
        guard let head = inFlight.first else {
            return .close(RedisError(.protocol, "\(settings.endpoint) sent a reply nobody asked for"))
        }
        switch head {
        case .request(let id, let waiter, let expected, var replies):
            consecutiveMisses = 0
            if expected == 1 && replies.isEmpty {
                inFlight.removeFirst()
                return .succeed(waiter, [reply])
            }
            replies.append(reply)
            if replies.count == expected {
                inFlight.removeFirst()
                return .succeed(waiter, replies)
            }
            inFlight[inFlight.startIndex] = .request(id: id, waiter: waiter, expected: expected, replies: replies)
            return .none
        case .expired(let remaining):
            if remaining <= 1 {
                inFlight.removeFirst()
            } else {
                inFlight[inFlight.startIndex] = .expired(remaining: remaining - 1)
            }
            return .none
        case .login(let step):
            inFlight.removeFirst()
            if case .error(let e) = reply {
                let what: String
                switch step {
                case .auth: what = "AUTH refused by \(settings.endpoint)"
                case .select: what = "SELECT \(settings.endpoint.database) refused by \(settings.endpoint)"
                case .ping: what = "\(settings.endpoint) answered PING with an error"
                }
                return .close(RedisError(.handshake, "\(what): \(e)"))
            }
            guard step == .ping else { return .none }
            phase = .ready
            consecutiveMisses = 0
            backoff.reset()
            let health: Health? = (downReason != nil || !everReady) ? .up("connected to \(settings.endpoint)") : nil
            downReason = nil
            everReady = true
            var waiters: [Waiter] = []
            waiters.reserveCapacity(queued.count)
            while let q = queued.popFirst() {
                inFlight.append(.request(id: q.id, waiter: q.waiter, expected: q.count, replies: []))
                waiters.append(q.waiter)
            }
            return .ready(write: waiters, health: health)
        case .probe:
            inFlight.removeFirst()
            if case .error = reply {
                phase = .probing(probeInFlight: false)
                return .probeAgain(after: settings.probeInterval)
            }
            phase = .ready
            consecutiveMisses = 0
            downReason = nil
            return .recovered(.up("\(settings.endpoint) answers again"))
        }
    }

    /// A probe has waited `probeTimeout` unanswered: the socket may lead nowhere (a peer gone
    /// without a reset), so the owner closes it and reconnects. Nil when the probe was answered.
    func probeTimedOut() -> RedisError? {
        guard phase == .probing(probeInFlight: true) else { return nil }
        return RedisError(.timeout, "\(settings.endpoint) did not answer a probe within \(settings.probeTimeout.nanoseconds / 1_000_000) ms")
    }

    /// The probe timer fired: true when the owner must write a probe and flush.
    mutating func probeTimerFired() -> Bool {
        guard phase == .probing(probeInFlight: false) else { return false }
        phase = .probing(probeInFlight: true)
        inFlight.append(.probe)
        return true
    }

    // MARK: The socket

    /// The login commands for a new socket, to write and flush at once.
    mutating func connected() -> [[String]] {
        guard phase == .connecting else { return [] }
        phase = .loggingIn
        var commands: [[String]] = []
        if let password = settings.endpoint.password {
            var auth = ["AUTH"]
            if let user = settings.endpoint.username { auth.append(user) }
            auth.append(password)
            commands.append(auth)
            inFlight.append(.login(.auth))
        }
        if settings.endpoint.database != 0 {
            commands.append(["SELECT", String(settings.endpoint.database)])
            inFlight.append(.login(.select))
        }
        // A PING last: the connection is ready only once Redis has answered a command.
        commands.append(["PING"])
        inFlight.append(.login(.ping))
        return commands
    }

    enum LossAction {
        case none
        /// Fail these callers, tell the client if the health changed, reconnect after `after`.
        case reconnect(after: TimeAmount, fail: [Waiter], error: RedisError, health: Health?)
    }

    /// The connect failed, or the socket closed (for `reason`).
    mutating func connectionLost(_ reason: RedisError, now: NIODeadline) -> LossAction {
        if phase == .shutDown { return .none }
        phase = .waitingToReconnect
        var failed: [Waiter] = []
        while let slot = inFlight.popFirst() {
            if case .request(_, let waiter, _, _) = slot { failed.append(waiter) }
        }
        while let q = queued.popFirst() { failed.append(q.waiter) }
        flushScheduled = false
        unflushed = 0
        consecutiveMisses = 0
        let health: Health? = downReason == nil ? .down(reason.message) : nil
        downReason = "is not reachable (\(reason.message))"
        return .reconnect(after: backoff.next(now: now), fail: failed, error: reason, health: health)
    }

    /// The reconnect timer fired: true when the owner must connect.
    mutating func reconnectTimerFired() -> Bool {
        guard phase == .waitingToReconnect else { return false }
        phase = .connecting
        return true
    }

    /// Stops for good: fail every caller and close the socket.
    mutating func shutdown() -> [Waiter] {
        phase = .shutDown
        downReason = "was shut down"
        var failed: [Waiter] = []
        while let slot = inFlight.popFirst() {
            if case .request(_, let waiter, _, _) = slot { failed.append(waiter) }
        }
        while let q = queued.popFirst() { failed.append(q.waiter) }
        return failed
    }
}
