import BreakerCore
import Synchronization

/// What this process last knew of each breaker's operator mode and open time, so that an answer
/// given without Redis keeps an operator's decision and an open breaker's wait, whatever
/// `--degraded` says: a breaker forced open, or open until some time, stays denied while the store
/// cannot answer.
///
/// It learns from every ACQUIRE Redis answered, every FORCE and RESET this process ran, and every
/// event line of the fleet's subscription (so a FORCE made through another breakerd counts too).
/// Times are unix ms: event lines carry Redis's clock, replies' waits are counted from this
/// process's clock when they arrived.
final class KnownBreakers: Sendable {
    struct Knowledge: Sendable, Hashable {
        var mode: BreakerMode = .auto
        /// When a forced mode ends by itself (0: it does not).
        var modeUntil = 0
        /// Until when the breaker is open (0: not known open).
        var openUntil = 0
        var lastUsed = 0
    }

    private let entries = Mutex<[String: Knowledge]>([:])
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// An ACQUIRE Redis answered at `now`: a permit means the breaker is neither forced open nor
    /// open; a deny of an open breaker means open for the wait it gave.
    func learn(_ name: String, acquire decision: AcquireDecision, now: Int) {
        change(name, now: now) { k in
            switch decision {
            case .permit(_, let state):
                if k.mode == .forcedOpen { k.mode = .auto }
                if state != .open { k.openUntil = 0 }
            case .deny(let state, let retry):
                if state == .open { k.openUntil = now + retry }
            }
        }
    }

    /// What an operator's FORCE or RESET through this process left: the breaker's state and mode.
    func learn(_ name: String, state: BreakerState, mode: BreakerMode, modeUntil: Int, openUntil: Int?, now: Int) {
        change(name, now: now) { k in
            k.mode = mode
            k.modeUntil = mode == .auto ? 0 : modeUntil
            if state != .open { k.openUntil = 0 } else if let openUntil { k.openUntil = openUntil }
        }
    }

    /// A fleet event line: transitions and mode changes from any breakerd.
    func learn(event line: String) {
        guard let event = BreakerEvent(line: line) else { return }
        change(event.breaker, now: event.atMs) { k in
            if let change = event.modeChange {
                k.mode = change.to
                let ttl = event.int("ttl_ms") ?? 0
                k.modeUntil = change.to != .auto && ttl > 0 ? event.atMs + ttl : 0
            }
            if event.reason == "reset" {
                k.mode = .auto
                k.modeUntil = 0
            }
            switch event.to {
            case .open:
                if event.from != .open || event.reason == "forced_open" {
                    // A trip says how long (open_ms); a forced open, its ttl (or none).
                    if let openMs = event.int("open_ms") {
                        k.openUntil = event.atMs + openMs
                    } else if let ttl = event.int("ttl_ms"), ttl > 0 {
                        k.openUntil = event.atMs + ttl
                    }
                }
            case .closed, .halfOpen:
                k.openUntil = 0
            }
        }
    }

    /// The answer an operator's decision or a known open time imposes while Redis cannot answer;
    /// nil when the degraded policy may decide.
    func degradedDecision(_ name: String, now: Int) -> AcquireDecision? {
        guard let k = entries.withLock({ $0[name] }) else { return nil }
        let modeLive = k.modeUntil == 0 || now < k.modeUntil
        if k.mode == .forcedOpen && modeLive {
            let retry = k.modeUntil > 0 ? k.modeUntil - now : max(1, k.openUntil - now, 1000)
            return .deny(state: .open, retryAfterMs: max(1, retry))
        }
        if k.mode == .forcedClosed && modeLive {
            return .permit(permit: LocalBreakers.permitPrefix + "forced", state: .closed)
        }
        if k.openUntil > now {
            return .deny(state: .open, retryAfterMs: k.openUntil - now)
        }
        return nil
    }

    private func change(_ name: String, now: Int, _ body: (inout Knowledge) -> Void) {
        entries.withLock { entries in
            entries.makeRoom(for: name, capacity: capacity) { $0.lastUsed }
            var k = entries[name] ?? Knowledge()
            body(&k)
            k.lastUsed = now
            if k == Knowledge(lastUsed: k.lastUsed) {
                // Nothing worth keeping: an auto breaker not known open.
                entries.removeValue(forKey: name)
            } else {
                entries[name] = k
            }
        }
    }
}
