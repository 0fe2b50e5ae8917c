import NIOCore
import Synchronization

/// The connections to one breakerd address, and whether that address is down.
///
/// Connections are opened on demand, up to `size`, and requests go round-robin over them, pipelined.
/// A failed connect or a missed deadline marks the address down: it is skipped until its backoff
/// has passed (doubling per failure), and the next request after that tries it again.
final class AddressPool: Sendable {
    let address: BreakerAddress
    private let size: Int
    private let backoff: Duration
    private let maxBackoff: Duration
    private let connector: @Sendable (BreakerAddress) async throws -> ClientConnection

    private enum Slot {
        case empty
        case connecting(Task<ClientConnection, any Error>)
        case ready(ClientConnection)
    }

    private struct State {
        var slots: [Slot]
        var next = 0
        var failures = 0
        var downUntil: ContinuousClock.Instant?
        var shutDown = false
    }

    private let state: Mutex<State>

    init(
        address: BreakerAddress,
        size: Int,
        backoff: Duration,
        maxBackoff: Duration,
        connector: @escaping @Sendable (BreakerAddress) async throws -> ClientConnection
    ) {
        self.address = address
        self.size = max(1, size)
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.connector = connector
        self.state = Mutex(State(slots: Array(repeating: .empty, count: max(1, size))))
    }

    /// True while the address waits out its backoff.
    var isDown: Bool {
        state.withLock { s in s.downUntil.map { ContinuousClock.now < $0 } ?? false }
    }

    /// When the address may be tried again (nil when it is up).
    var downUntil: ContinuousClock.Instant? { state.withLock { $0.downUntil } }

    /// A live connection: an open one, one being opened, or a new one.
    func connection() async throws -> ClientConnection {
        enum Pick {
            case ready(ClientConnection)
            case wait(Task<ClientConnection, any Error>, Int)
        }
        let pick: Pick = try state.withLock { s in
            if s.shutDown { throw BreakerClientError(.shutDown, "the client is shut down") }
            let index = s.next % s.slots.count
            s.next = (s.next + 1) % s.slots.count
            switch s.slots[index] {
            case .ready(let c) where c.isActive:
                return .ready(c)
            case .connecting(let task):
                return .wait(task, index)
            case .ready, .empty:
                let connector = self.connector
                let address = self.address
                let task = Task { try await connector(address) }
                s.slots[index] = .connecting(task)
                return .wait(task, index)
            }
        }
        switch pick {
        case .ready(let c):
            return c
        case .wait(let task, let index):
            do {
                let c = try await task.value
                let keep = state.withLock { s -> Bool in
                    if case .connecting = s.slots[index] { s.slots[index] = .ready(c) }
                    s.failures = 0
                    s.downUntil = nil
                    return !s.shutDown
                }
                guard keep else {
                    c.close()
                    throw BreakerClientError(.shutDown, "the client is shut down")
                }
                return c
            } catch let error as BreakerClientError where error.code == .refused {
                // A refused AUTH says nothing about the address being down.
                state.withLock { s in s.slots[index] = .empty }
                throw error
            } catch {
                state.withLock { s in s.slots[index] = .empty }
                markDown()
                throw error
            }
        }
    }

    /// Marks the address down for the next backoff step.
    func markDown() {
        state.withLock { s in
            s.failures += 1
            var wait = backoff
            for _ in 1..<min(s.failures, 20) where wait < maxBackoff { wait = wait * 2 }
            s.downUntil = ContinuousClock.now + min(wait, maxBackoff)
        }
    }

    /// Closes every connection; later requests fail.
    func shutdown() {
        let slots = state.withLock { s in
            s.shutDown = true
            defer { s.slots = Array(repeating: .empty, count: s.slots.count) }
            return s.slots
        }
        for slot in slots {
            switch slot {
            case .ready(let c): c.close()
            case .connecting(let t): Task { try? await t.value.close() }
            case .empty: break
            }
        }
    }
}
