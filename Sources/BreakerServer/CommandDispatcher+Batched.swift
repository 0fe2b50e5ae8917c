import BreakerCore
import BreakerStore
import RESP

/// An error reply, as a Swift error, for argument checks shared by the immediate and the async paths.
struct ReplyError: Error {
    let result: CommandResult
    init(_ result: CommandResult) { self.result = result }
}

/// The batched consistency mode: ACQUIRE and REPORT answered from this process's knowledge on the
/// connection's event loop, and the flush that folds outcomes into Redis.
extension CommandDispatcher {
    /// Runs `request` at once when batched mode can answer it without the store; nil otherwise
    /// (and nothing was done or counted: `execute` will run it).
    func executeImmediately(_ request: RESPRequest, session: ConnectionSession) -> CommandResult? {
        guard let batched, request.arguments.count == 2 || request.arguments.count >= 4 else { return nil }
        guard !session.isSubscribed, health.isUp else { return nil }
        let name = request.name
        guard name == "ACQUIRE" || name == "REPORT" else { return nil }
        let args = (1..<request.arguments.count).compactMap { request.string(at: $0) }
        guard refuse(.replica, name: name, args: args, role: session.role) == nil else { return nil }
        if name == "ACQUIRE" {
            guard args.count == 1, let breaker = try? BreakerName(args[0]) else { return nil }
            let decision: AcquireDecision
            let kind: AcquireResultKind
            switch batched.acquire(breaker.value) {
            case .store: return nil
            case .permit(let permit):
                decision = .permit(permit: permit, state: .closed)
                kind = .permit
            case .deny(let state, let retry):
                decision = .deny(state: state, retryAfterMs: retry)
                kind = .deny
            }
            observer.commandExecuted("acquire")
            observer.acquired(breaker: breaker.value, result: kind, replica: session.name)
            return CommandResult(.simpleString(BreakerLines.acquire(decision)))
        }
        guard case .success(let report) = Self.reportRequest(args), BatchedBreakers.isBatchedPermit(report.permit) else {
            return nil
        }
        observer.commandExecuted("report")
        return reportBatched(batched, report, session: session)
    }

    /// A REPORT of a permit batched mode issued: it goes to the pending fold, never to Redis at once.
    func reportBatched(_ batched: BatchedBreakers, _ r: ReportRequest, session: ConnectionSession) -> CommandResult {
        switch batched.report(r.name.value, permit: r.permit, outcome: r.outcome, latencyMs: r.latency) {
        case .unknownPermit:
            return .error("ERR unknown permit '\(r.permit)' for breaker '\(r.name)'")
        case .ok(let state):
            observer.reported(breaker: r.name.value, outcome: r.outcome, replica: session.name, latencyMs: r.latency)
            return CommandResult(.simpleString("OK \(state.rawValue)"))
        }
    }

    /// One flush: every breaker used since the last one folds its pending outcomes into Redis (or
    /// just reads its state) and learns what Redis says now. Folds of many breakers go out
    /// together and the Redis client pipelines them.
    func flushBatched() async {
        guard let batched else { return }
        let work = batched.takeWork()
        guard !work.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for item in work {
                if running >= 256 {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { await self.fold(item, into: batched) }
            }
        }
    }

    private func fold(_ item: BatchedBreakers.FoldWork, into batched: BatchedBreakers) async {
        guard let name = try? BreakerName(item.name) else { return }
        let started = BatchedBreakers.nowMs()
        // With nothing to count, a fold only reads the state (under the generation it knows).
        let folds = item.counts.isEmpty
            ? [(generation: item.generation ?? 0, counts: BatchedBreakers.Counts())] : item.counts
        var last: FoldResult?
        for (i, f) in folds.enumerated() {
            do {
                last = try await foldOnce(name, generation: f.generation, counts: f.counts, batched: batched)
            } catch {
                // Every outcome not folded is lost: counted, logged, never silent. What was known
                // is forgotten, so the next ACQUIRE asks Redis (or degrades).
                let lost = folds[i...].reduce(into: BatchedBreakers.Counts()) { sum, f in
                    sum.calls += f.counts.calls
                    sum.failures += f.counts.failures
                    sum.slow += f.counts.slow
                }
                if lost.calls > 0 {
                    stats.foldsLost.add(folds.count - i, ordering: .relaxed)
                    stats.outcomesLost.add(lost.calls, ordering: .relaxed)
                    observer.outcomesLost(breaker: item.name, count: lost.calls)
                    logger.warning(
                        "outcomes lost: a fold could not reach Redis within its retry budget",
                        metadata: [
                            "breaker": "\(item.name)", "calls": "\(lost.calls)", "failures": "\(lost.failures)",
                            "slow": "\(lost.slow)", "error": "\(error.message)",
                        ])
                }
                batched.forget(item.name)
                return
            }
        }
        if let last { batched.learn(item.name, result: last, epoch: item.epoch, startedAt: started) }
    }

    /// One fold, delivered exactly once: a fold that timed out or lost its connection may or may
    /// not have been applied, so it is sent again with the same id, which the library remembers
    /// and applies only once, until it is answered or its budget (`foldRetryBudgetMs`) runs out.
    private func foldOnce(
        _ name: BreakerName, generation: Int, counts: BatchedBreakers.Counts, batched: BatchedBreakers
    ) async throws(StoreError) -> FoldResult {
        let id = counts.calls > 0 ? batched.nextFoldID() : nil
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(batched.foldRetryBudgetMs)
        var backoff = Duration.milliseconds(5)
        while true {
            do {
                let result = try await timed("fold") { () async throws(StoreError) in
                    try await store.fold(
                        name, generation: generation, calls: counts.calls, failures: counts.failures,
                        slow: counts.slow, id: id)
                }
                logEvents(result.events)
                return result
            } catch where error.code == .unavailable {
                storeUnavailable(error)
                guard clock.now + backoff < deadline else { throw error }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(200))
            }
        }
    }
}
