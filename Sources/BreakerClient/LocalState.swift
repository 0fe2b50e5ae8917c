import BreakerCore
import Foundation
import Synchronization

/// Denies an open breaker locally until its retry-after, without a round trip.
///
/// Knowledge is trusted only while the client's event subscription has been live without a break
/// since the deny was learned (`epoch`): any event for the breaker forgets it, and a lost
/// subscription forgets everything, since an operator's RESET might have gone unheard.
final class OpenStateCache: Sendable {
    private struct Entry {
        var until: ContinuousClock.Instant
        var state: BreakerState
        var epoch: Int
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// The current live subscription, or nil while there is none.
        var liveEpoch: Int?
    }

    private let state = Mutex(State())
    /// Keeps a fleet with many open breakers from growing the cache without bound.
    private let capacity = 10_000

    /// Remembers a deny from breakerd; only `open` denies with a retry-after are worth it.
    func learn(_ breaker: String, state breakerState: BreakerState, retryAfterMs: Int) {
        guard breakerState == .open, retryAfterMs > 0 else { return }
        state.withLock { s in
            guard let epoch = s.liveEpoch else { return }
            if s.entries.count >= capacity { s.entries.removeAll() }
            s.entries[breaker] = Entry(
                until: ContinuousClock.now + .milliseconds(retryAfterMs), state: breakerState, epoch: epoch)
        }
    }

    /// A local deny while the breaker is known open: its state and the time left.
    func deny(_ breaker: String) -> (state: BreakerState, retryAfter: Duration)? {
        state.withLock { s in
            guard let entry = s.entries[breaker] else { return nil }
            let now = ContinuousClock.now
            guard entry.epoch == s.liveEpoch, now < entry.until else {
                s.entries[breaker] = nil
                return nil
            }
            return (entry.state, now.duration(to: entry.until))
        }
    }

    func forget(_ breaker: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: breaker) }
    }

    /// The subscription is live (a new epoch) or lost (nil); either way older knowledge is dropped.
    func subscription(live epoch: Int?) {
        state.withLock { s in
            s.liveEpoch = epoch
            s.entries.removeAll()
        }
    }

    var isLive: Bool { state.withLock { $0.liveEpoch != nil } }
}

/// The in-process breakers of `UnavailablePolicy.local`: one `BreakerModel` per breaker name, fed
/// only by this process's calls while no breakerd answers. Dropped once breakerd answers again, so
/// a later outage starts from closed rather than from stale local history.
final class LocalBreakers: Sendable {
    static let permitPrefix = "C"
    private let models = Mutex<[String: BreakerModel]>([:])
    private let policy: BreakerPolicy
    private let capacity = 10_000

    init(policy: BreakerPolicy) {
        self.policy = policy
    }

    static func nowMs() -> Int { Int(Date().timeIntervalSince1970 * 1000) }

    func acquire(_ breaker: String) -> AcquireDecision {
        let now = Self.nowMs()
        let decision = models.withLock { m in
            if m[breaker] == nil && m.count >= capacity { m.removeAll() }
            var model = m[breaker] ?? BreakerModel(policy: policy)
            let d = model.acquire(now: now)
            _ = model.drainTransitions()
            m[breaker] = model
            return d
        }
        if case .permit(let permit, let state) = decision {
            return .permit(permit: Self.permitPrefix + permit, state: state)
        }
        return decision
    }

    func report(_ breaker: String, permit: String, outcome: Outcome, latencyMs: Int) {
        let now = Self.nowMs()
        models.withLock { m in
            guard var model = m[breaker] else { return }
            _ = model.report(
                permit: String(permit.dropFirst(Self.permitPrefix.count)), outcome: outcome,
                latencyMs: latencyMs, now: now)
            _ = model.drainTransitions()
            m[breaker] = model
        }
    }

    func forgetAll() {
        models.withLock { if !$0.isEmpty { $0.removeAll() } }
    }
}
