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
    /// ACQUIRE and REPORT answers marked `degraded`: decided or acknowledged without Redis.
    let degradedAnswers = Atomic<Int>(0)
    /// Store calls that failed because Redis did not answer in time or could not be reached.
    let storeFailures = Atomic<Int>(0)
    /// Failed AUTH attempts (and HELLO ... AUTH).
    let authFailures = Atomic<Int>(0)
    /// Failed AUTHs answered late because their peer had failed several times in a row.
    let authThrottled = Atomic<Int>(0)
    /// Batched outcomes that could not be folded into Redis within their retry budget: lost.
    let foldsLost = Atomic<Int>(0)
    let outcomesLost = Atomic<Int>(0)
    /// Connections refused because their peer address had `maxClientsPerPeer` open.
    let rejectedPerPeer = Atomic<Int>(0)
    /// Connections admitted into the admin reserve past `maxClients`.
    let reserveAdmitted = Atomic<Int>(0)
    /// Connections the server closed itself, by reason (rare: a lock is fine).
    private let closes = Mutex<[ConnectionCloseReason: Int]>([:])
    /// Open connections per peer address (host only), kept only when a per-peer limit is set.
    private let perPeer = Mutex<[String: Int]>([:])

    private let listeners = Atomic<Int>(0)

    /// An id for an in-process event listener (HTTP's SSE streams): negative, so it never meets a
    /// connection's id in the fan-out.
    func nextListenerID() -> Int {
        -listeners.add(1, ordering: .relaxed).newValue
    }

    func countClose(_ reason: ConnectionCloseReason) {
        closes.withLock { $0[reason, default: 0] += 1 }
    }

    /// Connections the server closed for `reason` since start.
    func closed(_ reason: ConnectionCloseReason) -> Int {
        closes.withLock { $0[reason, default: 0] }
    }

    /// Takes a connection slot for `host` unless it already has `limit` open; false when full.
    func admitPeer(_ host: String, limit: Int) -> Bool {
        perPeer.withLock { counts in
            let n = counts[host, default: 0]
            guard n < limit else { return false }
            counts[host] = n + 1
            return true
        }
    }

    func releasePeer(_ host: String) {
        perPeer.withLock { counts in
            let n = counts[host, default: 0] - 1
            counts[host] = n > 0 ? n : nil
        }
    }

    /// The next connection id: Redis's `CLIENT ID` and HELLO's `id`.
    func nextConnectionID() -> Int {
        totalConnections.add(1, ordering: .relaxed).newValue
    }
}
