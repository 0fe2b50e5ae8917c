import BreakerCore
import Foundation
import Logging
import Synchronization

/// The status page's trends: every `interval` the HTTP layer reads the fleet (as a scrape does) and
/// keeps, per breaker, the last `count` samples of its window's calls and failure rate and of the
/// denies this process answered since the sample before. Memory only: a restart starts the charts
/// afresh. It also keeps the last fleet read that succeeded, so the page can show the last known
/// state while Redis is down.
final class BreakerSamples: Sendable {
    struct Sample: Sendable, Equatable {
        /// Unix ms on this process's clock.
        var at: Int
        var calls: Int
        var failureRate: Double
        var denies: Int
        var state: BreakerState
    }

    private let reader: FleetReader
    private let interval: Duration
    private let count: Int
    private let logger: Logger
    private let state = Mutex<State>(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    private struct State {
        var series: [String: [Sample]] = [:]
        var deniesSeen: [String: Int] = [:]
        var lastGood: (at: Int, view: FleetView)?
    }

    init(reader: FleetReader, interval: Duration, count: Int, logger: Logger) {
        self.reader = reader
        self.interval = interval
        self.count = max(2, count)
        self.logger = logger
    }

    /// Starts sampling, once.
    func start() {
        task.withLock { t in
            guard t == nil else { return }
            t = Task { [weak self] in
                while !Task.isCancelled {
                    await self?.sampleNow()
                    guard let interval = self?.interval else { return }
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    func stop() async {
        let t = task.withLock { t -> Task<Void, Never>? in
            defer { t = nil }
            return t
        }
        t?.cancel()
        await t?.value
    }

    /// Takes one sample of every breaker now; a failed read takes none (the gap shows on the chart).
    func sampleNow() async {
        guard let view = try? await reader.read(historyCount: 0) else { return }
        record(view, denies: reader.metrics.deniesByBreaker)
    }

    func record(_ view: FleetView, denies: [String: Int], at: Int = BreakerSamples.nowMs()) {
        state.withLock { s in
            var kept: [String: [Sample]] = [:]
            for b in view.breakers {
                let name = b.snapshot.name
                let total = denies[name] ?? 0
                let before = s.deniesSeen[name] ?? total
                var list = s.series[name] ?? []
                list.append(
                    Sample(
                        at: at, calls: b.snapshot.calls, failureRate: Double(b.snapshot.failureRate) ?? 0,
                        denies: max(0, total - before), state: b.effectiveState))
                if list.count > count { list.removeFirst(list.count - count) }
                kept[name] = list
                s.deniesSeen[name] = total
            }
            // A breaker gone from Redis leaves the charts with it.
            s.series = kept
            // This read has no history or policy: keep those from the last read that had them.
            var merged = view
            if let old = s.lastGood?.view {
                let known = Dictionary(old.breakers.map { ($0.snapshot.name, $0) }, uniquingKeysWith: { a, _ in a })
                for i in merged.breakers.indices {
                    if let k = known[merged.breakers[i].snapshot.name] {
                        merged.breakers[i].policy = k.policy
                        merged.breakers[i].history = k.history
                    }
                }
            }
            s.lastGood = (at, merged)
        }
    }

    /// Notes a fleet read made for another reason (a page's refresh) as the last known state.
    func remember(_ view: FleetView, at: Int = BreakerSamples.nowMs()) {
        state.withLock { $0.lastGood = (at, view) }
    }

    func samples(of breaker: String) -> [Sample] { state.withLock { $0.series[breaker] ?? [] } }

    var lastGood: (at: Int, view: FleetView)? { state.withLock { $0.lastGood } }

    var intervalMs: Int { Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000) }

    static func nowMs() -> Int { Int((Date().timeIntervalSince1970 * 1000).rounded()) }
}
