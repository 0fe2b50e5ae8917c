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
        for f in folds {
            do {
                let result = try await timed("fold") { () async throws(StoreError) in
                    try await store.fold(
                        name, generation: f.generation, calls: f.counts.calls, failures: f.counts.failures,
                        slow: f.counts.slow)
                }
                storeAnswered()
                logEvents(result.events)
                last = result
            } catch {
                // The outcomes are dropped, as strict mode drops a REPORT Redis cannot take; what
                // was known is forgotten, so the next ACQUIRE asks Redis (or degrades).
                if error.code == .unavailable { storeUnavailable(error) }
                batched.forget(item.name)
                return
            }
        }
        if let last { batched.learn(item.name, result: last, epoch: item.epoch, startedAt: started) }
    }
}
