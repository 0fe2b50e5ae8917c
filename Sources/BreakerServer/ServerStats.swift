import Foundation
import Synchronization

/// Counters INFO reports and the connection limit reads.
final class ServerStats: Sendable {
    let startedAt = Date()
    let connectedClients = Atomic<Int>(0)
    let totalConnections = Atomic<Int>(0)
    let rejectedConnections = Atomic<Int>(0)
    /// The port actually bound (differs from the configured one when that is 0).
    let port = Atomic<Int>(0)

    private let listeners = Atomic<Int>(0)

    /// An id for an in-process event listener (HTTP's SSE streams): negative, so it never meets a
    /// connection's id in the fan-out.
    func nextListenerID() -> Int {
        -listeners.add(1, ordering: .relaxed).newValue
    }

    /// The next connection id: Redis's `CLIENT ID` and HELLO's `id`.
    func nextConnectionID() -> Int {
        totalConnections.add(1, ordering: .relaxed).newValue
    }
}
