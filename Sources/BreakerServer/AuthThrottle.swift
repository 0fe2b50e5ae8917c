import Logging
import Synchronization

/// Failed AUTHs, per peer address: each is counted; they are logged at most once a second per
/// peer (with how many were not); and after `freeFailures` in a row from one address, each further
/// failure is answered late — 50 ms, doubling to at most `maxDelay` — so guessing a password over
/// one connection or many runs at a few a second instead of thousands. A success clears the count.
final class AuthThrottle: Sendable {
    private struct Peer {
        var consecutive = 0
        var lastLogged: ContinuousClock.Instant?
        var unlogged = 0
        var lastSeen: ContinuousClock.Instant
    }

    /// What to do about one failure.
    struct Verdict: Sendable, Equatable {
        /// How long to wait before answering (zero: at once).
        var delay: Duration
        /// Log this one; `unlogged` failures since the last line were not.
        var log: Bool
        var unlogged: Int
        var consecutive: Int
    }

    let freeFailures: Int
    let maxDelay: Duration
    private let capacity: Int
    private let peers = Mutex<[String: Peer]>([:])

    init(freeFailures: Int = 5, maxDelay: Duration = .seconds(1), capacity: Int = 10_000) {
        self.freeFailures = freeFailures
        self.maxDelay = maxDelay
        self.capacity = capacity
    }

    func failed(host: String, now: ContinuousClock.Instant = .now) -> Verdict {
        peers.withLock { peers in
            peers.makeRoom(for: host, capacity: capacity) { $0.lastSeen }
            var p = peers[host] ?? Peer(lastSeen: now)
            p.consecutive += 1
            p.lastSeen = now
            let log = p.lastLogged.map { now - $0 >= .seconds(1) } ?? true
            let unlogged = p.unlogged
            if log {
                p.lastLogged = now
                p.unlogged = 0
            } else {
                p.unlogged += 1
            }
            peers[host] = p
            var delay = Duration.zero
            if p.consecutive > freeFailures {
                let doublings = min(p.consecutive - freeFailures - 1, 20)
                delay = min(maxDelay, .milliseconds(50) * (1 << doublings))
            }
            return Verdict(delay: delay, log: log, unlogged: unlogged, consecutive: p.consecutive)
        }
    }

    func succeeded(host: String) {
        _ = peers.withLock { $0.removeValue(forKey: host) }
    }

    /// The address part of a `host:port` or `[v6]:port` peer string.
    static func host(ofPeer peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":") else { return peer }
        let host = peer[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { return String(host.dropFirst().dropLast()) }
        return String(host)
    }
}
