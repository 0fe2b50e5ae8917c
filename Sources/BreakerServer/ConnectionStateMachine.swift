import NIOCore

/// One client connection's requests, from the bytes read to the replies written, as a plain value:
/// each event method returns what the channel handler must do, and the handler does only that.
///
/// Requests run the way Redis serves a pipeline from the client's point of view: replies are
/// written strictly in request order. Unlike Redis, requests that neither read nor change the
/// connection's own state (ACQUIRE, REPORT, STATE...) run concurrently, up to `maxInFlight` at
/// once, so one connection carrying many callers' pipelined requests is not served one round trip
/// at a time. A request that changes the connection (AUTH, HELLO, SUBSCRIBE, QUIT...) is a
/// barrier: it starts once everything before it has finished, and nothing after it starts until it
/// has. Its effect on the session is therefore seen by every later request.
struct ConnectionStateMachine<Request> {
    /// How a request may run beside others of its connection.
    enum Scheduling: Sendable, Hashable {
        /// Reads the session and changes nothing of it: may run beside others.
        case concurrent
        /// May change the session: runs alone, in order.
        case exclusive
    }

    /// What the handler must do, in order.
    enum Action {
        /// Start running this request (its id comes back with `completed`).
        case run(id: Int, request: Request, scheduling: Scheduling)
        /// Write these replies; they are the next in request order.
        case write(CommandResult)
        /// Everything owed has been written: close. `linger`: shut the output side first and drain
        /// the input for a while, so replies already written are not lost to a reset.
        case close(linger: Bool)
    }

    private enum Slot {
        /// Read, not started: behind a barrier or over the in-flight limit.
        case waiting(Request, Scheduling)
        case running(Scheduling)
        case done(CommandResult)
        /// The protocol error that ends the connection, written in its place in the order.
        case protocolError(String)
    }

    private enum Phase: Equatable {
        /// Reading and running requests.
        case open
        /// No more requests are run (QUIT, a protocol error) or read (EOF, shutdown); what was
        /// accepted is answered, then the connection closes, lingering if `linger`.
        case ending(linger: Bool)
        case closed
    }

    let maxInFlight: Int
    /// Every request read and not yet answered, in order; the id of `slots[i]` is `firstID + i`.
    private var slots = CircularBuffer<Slot>()
    private var firstID = 0
    private var running = 0
    private var exclusiveRunning = false
    private var phase = Phase.open

    init(maxInFlight: Int) {
        self.maxInFlight = max(1, maxInFlight)
    }

    /// Requests read and not yet answered (running, waiting, or done and waiting for their turn).
    var outstanding: Int { slots.count }

    /// True while the connection reads and runs requests.
    var isAccepting: Bool { phase == .open }

    /// True when nothing is read and unanswered: the connection is idle.
    var isIdle: Bool { slots.isEmpty }

    // MARK: Events

    mutating func received(_ request: Request, scheduling: Scheduling) -> [Action] {
        guard phase == .open else { return [] }
        slots.append(.waiting(request, scheduling))
        return startWaiting()
    }

    /// A bad frame: the requests before it are answered, then this error, then the connection
    /// closes with a linger. Nothing read after it runs.
    mutating func protocolError(_ message: String) -> [Action] {
        guard phase == .open else { return [] }
        slots.append(.protocolError(message))
        phase = .ending(linger: true)
        return writeReady() + closeIfFinished()
    }

    mutating func completed(id: Int, result: CommandResult) -> [Action] {
        let index = id - firstID
        guard index >= 0, index < slots.count, case .running(let scheduling) = slots[offset: index] else {
            return []
        }
        running -= 1
        if scheduling == .exclusive { exclusiveRunning = false }
        slots[offset: index] = .done(result)
        var actions = writeReady()
        actions += startWaiting()
        actions += closeIfFinished()
        return actions
    }

    /// The peer closed its side (it sent everything): answer what it sent, then close.
    mutating func inputClosed() -> [Action] {
        guard phase == .open else { return [] }
        phase = .ending(linger: false)
        return closeIfFinished()
    }

    /// The server is shutting down: read nothing more, answer what was read, then close.
    mutating func quiesce() -> [Action] {
        guard phase == .open else { return [] }
        phase = .ending(linger: true)
        return startWaiting() + closeIfFinished()
    }

    /// The handler closed the channel itself (output limit, timeout, I/O error).
    mutating func closed() {
        phase = .closed
        slots.removeAll()
    }

    // MARK: Running and writing in order

    private mutating func startWaiting() -> [Action] {
        var actions: [Action] = []
        var i = slots.startIndex
        var position = 0
        while i != slots.endIndex {
            switch slots[i] {
            case .waiting(let request, let scheduling):
                if exclusiveRunning || running >= maxInFlight { return actions }
                if scheduling == .exclusive {
                    // A barrier waits for everything before it.
                    guard running == 0 else { return actions }
                    exclusiveRunning = true
                }
                slots[i] = .running(scheduling)
                running += 1
                actions.append(.run(id: firstID + position, request: request, scheduling: scheduling))
                if scheduling == .exclusive { return actions }
            case .running(.exclusive):
                return actions
            case .protocolError:
                return actions
            case .running, .done:
                break
            }
            i = slots.index(after: i)
            position += 1
        }
        return actions
    }

    /// Writes the answered requests at the head of the order, and what follows from them.
    private mutating func writeReady() -> [Action] {
        var actions: [Action] = []
        while let first = slots.first {
            switch first {
            case .done(let result):
                slots.removeFirst()
                firstID += 1
                actions.append(.write(result))
                if result.close {
                    // QUIT (or a command that ends the connection): nothing after it runs.
                    phase = .ending(linger: true)
                    dropUnstarted()
                }
            case .protocolError(let message):
                slots.removeFirst()
                firstID += 1
                actions.append(.write(.error("ERR \(message)")))
                phase = .ending(linger: true)
                dropUnstarted()
            case .waiting, .running:
                return actions
            }
        }
        return actions
    }

    /// After QUIT or a protocol error: requests read behind it are never run. Requests already
    /// running (only possible before a protocol error, which is not a barrier) are still answered.
    private mutating func dropUnstarted() {
        while let last = slots.last, case .waiting = last { slots.removeLast() }
    }

    private mutating func closeIfFinished() -> [Action] {
        guard case .ending(let linger) = phase, slots.isEmpty else { return [] }
        phase = .closed
        return [.close(linger: linger)]
    }
}
