import BreakerCore
import BreakerServer
import BreakerStore
import Hiredis

/// Every breaker of the fleet as Redis has it now: what /metrics and /api/breakers show. Read at
/// request time, so the figures are the fleet's, not this process's guess.
struct FleetView: Sendable {
    struct Breaker: Sendable {
        var snapshot: BreakerSnapshot
        var policy: BreakerPolicy?
        var history: [String]

        /// The state as a call would find it now. Redis keeps `open` until the next acquire moves
        /// it, but once the open time is over (retry_after 0, no operator holding it open) the next
        /// call is a half-open trial: the gauge and the page say so without waiting for that call.
        var effectiveState: BreakerState {
            let s = snapshot
            if s.state == .open && s.mode != .forcedOpen && s.retryAfterMs <= 0 { return .halfOpen }
            return s.state
        }
    }

    var breakers: [Breaker]
    /// How many breakers exist in Redis; more than `breakers.count` when the read was capped.
    var total: Int
    var truncated: Bool { total > breakers.count }
}

/// Reads the fleet from the store, at most `maxBreakers` breakers (by name order), a bounded number
/// of store calls in flight at once, and keeps `StoreHealth` and the store metrics up to date.
struct FleetReader: Sendable {
    let store: BreakerStore
    let health: StoreHealth
    let metrics: BreakerMetrics
    let maxBreakers: Int
    /// Store calls in flight at once; the Redis client pipelines them.
    var concurrency = 32

    /// `historyCount` 0 reads no history and no policy (what /metrics needs).
    func read(historyCount: Int) async throws(StoreError) -> FleetView {
        let names = try await timed("list") { () async throws(StoreError) in try await store.list() }
        let chosen = names.prefix(maxBreakers).compactMap { try? BreakerName($0) }
        var breakers = [FleetView.Breaker?](repeating: nil, count: chosen.count)
        var start = 0
        while start < chosen.count {
            let end = min(chosen.count, start + concurrency)
            let results = await withTaskGroup(of: (Int, Result<FleetView.Breaker, StoreError>).self) { group in
                for i in start..<end {
                    group.addTask { (i, await self.readOne(chosen[i], historyCount: historyCount)) }
                }
                var all: [(Int, Result<FleetView.Breaker, StoreError>)] = []
                for await r in group { all.append(r) }
                return all
            }
            for (i, r) in results {
                switch r {
                case .success(let b): breakers[i] = b
                case .failure(let e): throw e
                }
            }
            start = end
        }
        return FleetView(breakers: breakers.compactMap { $0 }, total: names.count)
    }

    /// Answers whether the store answers now (one PING within the client's deadline).
    func probe() async -> Bool {
        do {
            let reply = try await timed("ping") { () async throws(StoreError) in
                do { return try await store.client.send(["PING"]) } catch { throw StoreError(.unavailable, "\(error)") }
            }
            if let message = reply.errorMessage {
                health.record(up: false, detail: message)
                return false
            }
            return true
        } catch {
            return false
        }
    }

    private func readOne(_ name: BreakerName, historyCount: Int) async -> Result<FleetView.Breaker, StoreError> {
        do throws(StoreError) {
            let snapshot = try await timed("state") { () async throws(StoreError) in try await store.state(name) }
            var policy: BreakerPolicy?
            var history: [String] = []
            if historyCount > 0 {
                policy = try await timed("config") { () async throws(StoreError) in try await store.policy(name) }
                history = try await timed("history") { () async throws(StoreError) in
                    try await store.history(name, count: historyCount)
                }
            }
            return .success(FleetView.Breaker(snapshot: snapshot, policy: policy, history: history))
        } catch {
            return .failure(error)
        }
    }

    private func timed<T>(_ operation: String, _ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let value = try await body()
            metrics.storeCall(operation, duration: clock.now - start, succeeded: true)
            if !health.isUp { health.record(up: true, detail: "answering") }
            return value
        } catch {
            metrics.storeCall(operation, duration: clock.now - start, succeeded: false)
            if error.code == .unavailable { health.record(up: false, detail: error.message) }
            throw error
        }
    }
}
