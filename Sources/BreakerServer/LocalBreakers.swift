import BreakerCore
import Foundation
import Logging
import Synchronization

/// The in-process breakers of the `local` degraded policy: one `BreakerModel` per breaker name,
/// fed only by this breakerd's own clients while Redis cannot answer.
///
/// Their permits start with `L` (`L<gen>.<seq>`) so a REPORT of one is recognised whether or not
/// the store is back: shared permits are plain numbers and never start with a letter.
final class LocalBreakers: Sendable {
    private struct Entry {
        var model: BreakerModel
        var lastUsed: Int
    }

    static let permitPrefix = "L"

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int
    private let logger: Logger

    init(capacity: Int, logger: Logger) {
        self.capacity = max(1, capacity)
        self.logger = logger
    }

    /// Logs the transitions a local breaker made (they reach no history and no subscriber: those
    /// live in the Redis that is unreachable).
    private func log(_ name: String, _ transitions: [BreakerModel.Transition]) {
        for t in transitions {
            logger.notice(
                "transition",
                metadata: [
                    "breaker": "\(name)", "event": "\(name) \(t.from.rawValue)->\(t.to.rawValue) reason=\(t.reason)", "local": "true",
                ])
        }
    }

    /// Decides an ACQUIRE locally; a breaker not yet modelled starts closed with `policy`.
    func acquire(_ name: String, policy: BreakerPolicy, now: Int = LocalBreakers.nowMs()) -> AcquireDecision {
        let (decision, made) = entries.withLock { entries in
            // Bounds memory: when full, the least recently used breaker is forgotten.
            entries.makeRoom(for: name, capacity: capacity) { $0.lastUsed }
            var entry = entries[name] ?? Entry(model: BreakerModel(policy: policy), lastUsed: now)
            entry.lastUsed = now
            let decision = entry.model.acquire(now: now)
            let made = entry.model.drainTransitions()
            entries[name] = entry
            return (decision, made)
        }
        log(name, made)
        switch decision {
        case .permit(let permit, let state): return .permit(permit: Self.permitPrefix + permit, state: state)
        case .deny: return decision
        }
    }

    /// Feeds an outcome to the local breaker; nil when the permit is not one it issued.
    /// A breaker this process no longer models (evicted, or never: `allow` permits) acknowledges as closed.
    func report(_ name: String, permit: String, outcome: Outcome, latencyMs: Int?, now: Int = LocalBreakers.nowMs())
        -> (state: BreakerState, effect: ReportEffect?)
    {
        // `Lallow` and `Lforced` permits (the allow policy, an operator's forced close) were never
        // a model's: they count nothing.
        let modelPermit = permit.contains(".")
        let (state, effect, made) = entries.withLock { entries in
            guard modelPermit else { return (entries[name]?.model.state ?? .closed, ReportEffect?.some(.notCounted), [BreakerModel.Transition]()) }
            guard var entry = entries[name] else { return (BreakerState.closed, ReportEffect?.some(.notCounted), [BreakerModel.Transition]()) }
            let effect = entry.model.report(
                permit: String(permit.dropFirst(Self.permitPrefix.count)), outcome: outcome, latencyMs: latencyMs, now: now)
            let made = entry.model.drainTransitions()
            entry.lastUsed = now
            entries[name] = entry
            return (entry.model.state, effect, made)
        }
        log(name, made)
        return (state, effect)
    }

    /// The local state of `name`; closed for a breaker not modelled.
    func state(_ name: String) -> BreakerState {
        entries.withLock { $0[name]?.model.state ?? .closed }
    }

    var count: Int { entries.withLock { $0.count } }

    static func isLocalPermit(_ permit: String) -> Bool { permit.hasPrefix(permitPrefix) }

    static func nowMs() -> Int { Int(Date().timeIntervalSince1970 * 1000) }
}
