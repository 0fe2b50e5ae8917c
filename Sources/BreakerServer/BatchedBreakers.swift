import BreakerCore
import BreakerStore
import Foundation
import Synchronization

/// The `batched` consistency mode's memory: what this process last learned of each breaker from
/// Redis, the permits it issued itself, and the outcomes waiting to be folded into Redis.
///
/// - A breaker known closed in `auto` mode gets permits from this process (`B<token>.<gen>.<seq>`),
///   with no round trip. Their outcomes are summed per generation and folded into Redis by one
///   script call per breaker per flush interval (the library's `breakerd_v2_fold`), which adds them to the window and
///   trips exactly as that many REPORTs would have.
/// - A breaker known open (or forced open) is denied here until the retry-after Redis gave.
/// - Anything else, half-open above all, goes to Redis as in strict mode: trial permits are never
///   handed out locally.
///
/// Knowledge is used for at most `validMs` after Redis gave it, and any event about a breaker (a
/// transition, an operator's FORCE, RESET or CONFIG SET, from any breakerd) forgets it at once, so
/// an operator's reset takes effect here as soon as its event arrives. Only a breaker used since
/// the last flush is synced, so an idle one costs nothing.
final class BatchedBreakers: Sendable {
    /// What a fold (or a strict acquire's deny) told this process.
    struct Known: Sendable {
        var state: BreakerState
        var generation: Int
        /// True when this process may issue permits itself: closed, auto mode.
        var issuesLocally: Bool
        /// Until when (monotonic ms) an ACQUIRE is denied here; 0 when not denying.
        var denyUntil: Int
        var slowCallMs: Int
        var permitTTLMs: Int
        /// When Redis said so (monotonic ms).
        var learnedAt: Int
    }

    struct Counts: Sendable {
        var calls = 0
        var failures = 0
        var slow = 0
    }

    /// A class, so the lock's holder changes it in place: a struct copied out of the dictionary
    /// would copy its permit table on every change.
    private final class Entry {
        var known: Known?
        /// Bumped by every event about the breaker: a fold started before it must not install
        /// what it learned, which the event may already contradict.
        var epoch = 0
        /// Outcomes of local permits not yet folded, by the generation their permits were issued in.
        var pending: [Int: Counts] = [:]
        /// Local permits issued and not yet reported: sequence number -> issue time (monotonic ms).
        var outstanding: [Int: Int] = [:]
        var lastSeq = 0
        /// Used since the last flush: the next flush syncs it.
        var active = false
        var lastUsed = 0

        init(active: Bool, lastUsed: Int) {
            self.active = active
            self.lastUsed = lastUsed
        }
    }

    /// What a fold needs: the breaker, its summed outcomes, and the epoch it was taken at.
    struct FoldWork: Sendable {
        var name: String
        var generation: Int?
        var counts: [(generation: Int, counts: Counts)]
        var epoch: Int
    }

    enum AcquireAnswer: Sendable {
        case permit(String)
        case deny(BreakerState, retryAfterMs: Int)
        /// Not answerable here: ask Redis.
        case store
    }

    enum ReportAnswer: Sendable, Equatable {
        /// Counted into the pending fold, or counted nothing (second report, lapsed, ignored);
        /// the state is what this process knows.
        case ok(BreakerState)
        case unknownPermit
    }

    static let permitPrefix = "B"

    let flushMs: Int
    let validMs: Int
    let maxOutstanding: Int
    /// Tells this process's permits from another breakerd's (or an earlier run's).
    let token: String
    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int
    /// Whether the event subscription is live. Without it an operator's reset could go unseen, so
    /// nothing is answered locally.
    private let eventsLive = Atomic<Bool>(false)
    private let folds = Atomic<Int>(0)
    /// How long a fold is retried (same id) after a timeout or a lost connection before its
    /// outcomes are counted as lost. Redis remembers a fold's id for 60 s, far longer.
    let foldRetryBudgetMs: Int

    init(flushMs: Int, capacity: Int = 100_000, maxOutstanding: Int = 100_000, foldRetryBudgetMs: Int = 2000) {
        self.foldRetryBudgetMs = max(0, foldRetryBudgetMs)
        self.flushMs = max(1, flushMs)
        // Events keep knowledge current (every transition and operator action forgets it), and
        // each flush of a breaker in use reads its state again; this bound only covers an event
        // lost without the subscription noticing. A breaker quiet for longer asks Redis again.
        self.validMs = max(2 * self.flushMs + 20, 1000)
        self.capacity = capacity
        self.maxOutstanding = maxOutstanding
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        self.token = String((0..<6).map { _ in alphabet.randomElement()! })
    }

    static func isBatchedPermit(_ permit: String) -> Bool { permit.hasPrefix(permitPrefix) }

    /// A fold id no other fold of this process (or another's: the token) has: a retried fold
    /// carries the same one, so Redis applies it once.
    func nextFoldID() -> String {
        "\(token).\(BatchedBreakers.startID).\(folds.add(1, ordering: .relaxed).newValue)"
    }

    /// This process's start, so a restarted breakerd that drew the same token still makes new ids.
    private static let startID = String(Int(Date().timeIntervalSince1970 * 1000), radix: 36)

    /// Records whether events are arriving; when they stop, everything known is forgotten, since
    /// the events that would have contradicted it may be lost.
    func setEventsLive(_ live: Bool) {
        let was = eventsLive.exchange(live, ordering: .relaxed)
        if was && !live { forgetAll() }
    }

    /// Answers an ACQUIRE from what is known, or says to ask Redis.
    func acquire(_ name: String, now: Int = BatchedBreakers.nowMs()) -> AcquireAnswer {
        let live = eventsLive.load(ordering: .relaxed)
        return entries.withLock { entries -> AcquireAnswer in
            guard let entry = entries[name] else {
                if entries.count >= capacity { Self.evict(&entries) }
                entries[name] = Entry(active: true, lastUsed: now)
                return .store
            }
            entry.active = true
            entry.lastUsed = now
            guard live, let known = entry.known, now - known.learnedAt <= validMs else { return .store }
            if known.denyUntil > now {
                return .deny(known.state, retryAfterMs: known.denyUntil - now)
            }
            guard known.issuesLocally, entry.outstanding.count < maxOutstanding else { return .store }
            entry.lastSeq += 1
            entry.outstanding[entry.lastSeq] = now
            return .permit("\(Self.permitPrefix)\(token).\(known.generation).\(entry.lastSeq)")
        }
    }

    /// Takes the outcome of a permit this process issued into the pending fold.
    func report(_ name: String, permit: String, outcome: Outcome, latencyMs: Int?, now: Int = BatchedBreakers.nowMs())
        -> ReportAnswer
    {
        let parts = permit.dropFirst(Self.permitPrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let generation = Int(parts[1]), let seq = Int(parts[2]), generation >= 0, seq > 0 else {
            return .unknownPermit
        }
        return entries.withLock { entries -> ReportAnswer in
            let state = entries[name]?.known?.state ?? .closed
            // Another breakerd's permit, or this one's before a restart: its lease cannot be
            // checked here, so it counts nothing, like a permit reported after its lease.
            guard parts[0] == token else { return .ok(state) }
            guard let entry = entries[name], seq <= entry.lastSeq else { return .unknownPermit }
            entry.lastUsed = now
            guard let issued = entry.outstanding.removeValue(forKey: seq) else { return .ok(state) }
            let slowCallMs = entry.known?.slowCallMs ?? 0
            let ttl = entry.known?.permitTTLMs ?? Int.max
            let latency = latencyMs ?? (now - issued)
            guard outcome != .ignore, now - issued < ttl else { return .ok(state) }
            var counts = entry.pending[generation] ?? Counts()
            counts.calls += 1
            if outcome == .failure { counts.failures += 1 }
            if slowCallMs > 0 && latency >= slowCallMs { counts.slow += 1 }
            entry.pending[generation] = counts
            entry.active = true
            return .ok(state)
        }
    }

    /// Takes what the next flush must send: every breaker used since the last one, with its
    /// pending outcomes (which leave this memory now). Lapsed local permits are forgotten.
    func takeWork(now: Int = BatchedBreakers.nowMs()) -> [FoldWork] {
        entries.withLock { entries in
            var work: [FoldWork] = []
            for (name, entry) in entries where entry.active {
                entry.active = false
                let counts = entry.pending.sorted { $0.key < $1.key }.map { (generation: $0.key, counts: $0.value) }
                entry.pending.removeAll(keepingCapacity: true)
                // Rebuilt only when a permit has lapsed: every flush copying every permit table
                // would cost more than the permits do.
                if let ttl = entry.known?.permitTTLMs, entry.outstanding.values.contains(where: { now - $0 >= ttl }) {
                    entry.outstanding = entry.outstanding.filter { now - $0.value < ttl }
                }
                work.append(FoldWork(name: name, generation: entry.known?.generation, counts: counts, epoch: entry.epoch))
            }
            return work
        }
    }

    /// Installs what Redis answered to a fold, unless an event about the breaker came meanwhile.
    func learn(_ name: String, result: FoldResult, epoch: Int, startedAt: Int) {
        entries.withLock { entries in
            guard let entry = entries[name], entry.epoch == epoch else { return }
            entry.known = Self.known(from: result, at: startedAt)
        }
    }

    /// Remembers a strict acquire's deny, so the next ones are answered here until its retry-after.
    func learnDeny(_ name: String, state: BreakerState, generation: Int, retryAfterMs: Int, at now: Int) {
        guard state == .open, retryAfterMs > 0 else { return }
        entries.withLock { entries in
            guard let entry = entries[name] else { return }
            var known = entry.known ?? Known(
                state: state, generation: generation, issuesLocally: false, denyUntil: 0, slowCallMs: 0,
                permitTTLMs: 10_000, learnedAt: now)
            known.state = state
            known.generation = generation
            known.issuesLocally = false
            known.denyUntil = now + retryAfterMs
            known.learnedAt = now
            entry.known = known
        }
    }

    /// Forgets what is known about a breaker; the next ACQUIRE asks Redis.
    func forget(_ name: String) {
        entries.withLock { entries in
            guard let entry = entries[name] else { return }
            entry.known = nil
            entry.epoch += 1
        }
    }

    /// Forgets everything known (the event subscription was lost: events may have been missed).
    func forgetAll() {
        entries.withLock { entries in
            for entry in entries.values {
                entry.known = nil
                entry.epoch += 1
            }
        }
    }

    /// The state this process knows, for the replies of local permits' reports.
    func knownState(_ name: String) -> BreakerState {
        entries.withLock { $0[name]?.known?.state ?? .closed }
    }

    var count: Int { entries.withLock { $0.count } }

    static func known(from r: FoldResult, at now: Int) -> Known {
        let denying = r.mode == .forcedOpen || (r.state == .open && r.retryAfterMs > 0)
        return Known(
            state: r.state, generation: r.generation,
            issuesLocally: r.state == .closed && r.mode == .auto,
            denyUntil: denying ? now + max(1, r.retryAfterMs) : 0,
            slowCallMs: r.slowCallMs, permitTTLMs: r.permitTTLMs, learnedAt: now)
    }

    /// Bounds memory: when full, the breaker least recently used and with nothing pending goes.
    /// The scan is lazy: a filtered copy of a full table on every new breaker would be the cost of
    /// being full.
    private static func evict(_ entries: inout [String: Entry]) {
        guard
            let oldest = entries.lazy.filter({ $0.value.pending.isEmpty })
                .min(by: { $0.value.lastUsed < $1.value.lastUsed })
        else { return }
        entries.removeValue(forKey: oldest.key)
    }

    /// Milliseconds of a monotonic clock: leases and retry-afters here never follow a wall-clock step.
    static func nowMs() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }
}
