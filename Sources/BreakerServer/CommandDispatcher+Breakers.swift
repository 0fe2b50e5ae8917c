import BreakerCore
import Foundation
import BreakerStore
import RESP

/// The breaker commands, and what ACQUIRE and REPORT do while the store is unavailable.
extension CommandDispatcher {
    func acquire(_ args: [String], session: ConnectionSession) async -> CommandResult {
        guard args.count == 1 else { return Self.wrongArity("acquire") }
        let name: BreakerName
        do { name = try BreakerName(args[0]) } catch { return .error("ERR \(error)") }
        do {
            let asked = BatchedBreakers.nowMs()
            let result = try await timed("acquire") { () async throws(StoreError) in try await store.acquire(name) }
            logEvents(result.events)
            known.learn(name.value, acquire: result.decision, now: asked)
            let kind: AcquireResultKind
            if case .permit = result.decision { kind = .permit } else { kind = .deny }
            if let batched, case .deny(let state, let retry) = result.decision, result.events.isEmpty {
                batched.learnDeny(name.value, state: state, generation: result.generation, retryAfterMs: retry, at: asked)
            }
            observer.acquired(breaker: name.value, result: kind, replica: session.name)
            return CommandResult(.simpleString(BreakerLines.acquire(result.decision)))
        } catch where error.code == .unavailable {
            storeUnavailable(error)
            stats.degradedAnswers.add(1, ordering: .relaxed)
            observer.acquired(breaker: name.value, result: .degraded, replica: session.name)
            return CommandResult(.simpleString(BreakerLines.acquire(degradedAcquire(name), degraded: true)))
        } catch {
            return storeError(error)
        }
    }

    /// The answer of the configured degraded policy. `local` uses the fleet default policy as this
    /// process last read it: a breaker's own overrides live in the Redis that cannot be read now.
    /// Whatever the policy, an operator's forced mode and a known open time come first.
    private func degradedAcquire(_ name: BreakerName) -> AcquireDecision {
        if let imposed = known.degradedDecision(name.value, now: LocalBreakers.nowMs()) { return imposed }
        switch configuration.degradedPolicy {
        case .local:
            return local.acquire(name.value, policy: store.defaultPolicy())
        case .allow:
            return .permit(permit: LocalBreakers.permitPrefix + "allow", state: .closed)
        case .deny:
            return .deny(state: .open, retryAfterMs: 1000)
        }
    }

    /// A REPORT's arguments, checked.
    struct ReportRequest {
        let name: BreakerName
        let permit: String
        let outcome: Outcome
        let latency: Int?
    }

    /// Checks a REPORT's arguments; the error reply when they are wrong.
    static func reportRequest(_ args: [String]) -> Result<ReportRequest, ReplyError> {
        guard args.count == 3 || args.count == 5 else { return .failure(ReplyError(wrongArity("report"))) }
        let name: BreakerName
        do { name = try BreakerName(args[0]) } catch { return .failure(ReplyError(.error("ERR \(error)"))) }
        let permit = args[1]
        guard let outcome = Outcome(rawValue: args[2].uppercased()) else {
            return .failure(ReplyError(.error("ERR unknown outcome '\(args[2].prefix(64))': expected SUCCESS, FAILURE or IGNORE")))
        }
        var latency: Int?
        if args.count == 5 {
            guard args[3].uppercased() == "LATENCY" else {
                return .failure(ReplyError(.error("ERR syntax error: expected LATENCY <ms> after the outcome, got '\(args[3].prefix(64))'")))
            }
            guard let ms = Int(args[4]), ms >= 0 else {
                return .failure(ReplyError(.error("ERR LATENCY must be a whole number of milliseconds >= 0, got '\(args[4].prefix(64))'")))
            }
            latency = ms
        }
        guard !permit.isEmpty, permit.utf8.count <= 64, permit.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return .failure(ReplyError(.error("ERR unknown permit '\(permit.prefix(64))' for breaker '\(name)'")))
        }
        return .success(ReportRequest(name: name, permit: permit, outcome: outcome, latency: latency))
    }

    func report(_ args: [String], session: ConnectionSession) async -> CommandResult {
        let request: ReportRequest
        switch Self.reportRequest(args) {
        case .success(let r): request = r
        case .failure(let e): return e.result
        }
        let (name, permit, outcome, latency) = (request.name, request.permit, request.outcome, request.latency)
        if let batched, BatchedBreakers.isBatchedPermit(permit) {
            return reportBatched(batched, request, session: session)
        }
        if LocalBreakers.isLocalPermit(permit) {
            // A permit of a degraded answer: its outcome feeds this process's own breaker, even if
            // the store is back by now, since the shared state never issued it.
            let (state, effect) = local.report(name.value, permit: permit, outcome: outcome, latencyMs: latency)
            guard effect != nil else { return .error("ERR unknown permit '\(permit)' for breaker '\(name)'") }
            stats.degradedAnswers.add(1, ordering: .relaxed)
            observer.reported(breaker: name.value, outcome: outcome, replica: session.name, latencyMs: latency)
            return CommandResult(.simpleString("OK \(state.rawValue) degraded"))
        }
        do {
            let result = try await timed("report") { () async throws(StoreError) in
                try await store.report(name, permit: permit, outcome: outcome, latencyMs: latency)
            }
            logEvents(result.events)
            observer.reported(breaker: name.value, outcome: outcome, replica: session.name, latencyMs: latency)
            return CommandResult(.simpleString(BreakerLines.report(state: result.state, effect: result.effect)))
        } catch where error.code == .unavailable {
            // The outcome of a shared permit cannot reach the shared window and is dropped: counting
            // it locally would mix two windows, and replaying it later would count it in a window
            // it no longer belongs to.
            storeUnavailable(error)
            stats.degradedAnswers.add(1, ordering: .relaxed)
            return CommandResult(.simpleString("OK \(local.state(name.value).rawValue) degraded"))
        } catch {
            return storeError(error)
        }
    }

    func state(_ args: [String]) async -> CommandResult {
        guard args.count == 1 else { return Self.wrongArity("state") }
        let name: BreakerName
        do { name = try BreakerName(args[0]) } catch { return .error("ERR \(error)") }
        do {
            let snapshot = try await timed("state") { () async throws(StoreError) in try await store.state(name) }
            return CommandResult(.simpleString(BreakerLines.state(snapshot)))
        } catch {
            return storeError(error)
        }
    }

    func list(_ args: [String]) async -> CommandResult {
        guard args.count <= 1 else { return Self.wrongArity("list") }
        let glob = args.first ?? "*"
        guard !glob.isEmpty, glob.utf8.count <= 256, !glob.contains("{"), !glob.contains("}") else {
            return .error("ERR the pattern must be 1 to 256 bytes without { or }")
        }
        do {
            let names = try await store.list(glob: glob).compactMap { try? BreakerName($0) }
            let snapshots = try await store.states(names)
            return CommandResult(.array(snapshots.map { .simpleString(BreakerLines.state($0)) }))
        } catch {
            return storeError(error)
        }
    }

    func history(_ args: [String]) async -> CommandResult {
        guard args.count == 1 || args.count == 2 else { return Self.wrongArity("history") }
        let name: BreakerName
        do { name = try BreakerName(args[0]) } catch { return .error("ERR \(error)") }
        var count = 20
        if args.count == 2 {
            guard let n = Int(args[1]), (1...10_000).contains(n) else {
                return .error("ERR the count must be a whole number from 1 to 10000, got '\(args[1].prefix(64))'")
            }
            count = n
        }
        do {
            let lines = try await timed("history") { () async throws(StoreError) in try await store.history(name, count: count) }
            return CommandResult(.array(lines.map { .simpleString($0) }))
        } catch {
            return storeError(error)
        }
    }

    func config(_ args: [String], session: ConnectionSession) async -> CommandResult {
        guard let sub = args.first?.uppercased() else { return Self.wrongArity("config") }
        switch sub {
        case "GET":
            guard args.count == 2 else { return Self.wrongArity("config|get") }
            do {
                let policy: BreakerPolicy
                if args[1] == "default" {
                    try await store.refreshDefaults()
                    policy = store.defaultPolicy()
                } else {
                    let name: BreakerName
                    do { name = try BreakerName(args[1]) } catch { return .error("ERR \(error)") }
                    policy = try await store.policy(name)
                }
                return CommandResult(.simpleString(BreakerLines.policy(policy)))
            } catch {
                return storeError(error)
            }
        case "SET":
            // An optional trailing `REASON <text>` (the rest of the line) goes to the audit trail.
            var end = args.count
            var reason = ""
            if let r = stride(from: 2, to: args.count - 1, by: 2).first(where: { args[$0].uppercased() == "REASON" }) {
                end = r
                reason = args[(r + 1)...].joined(separator: " ")
            }
            guard end >= 4, end % 2 == 0 else {
                return .error("ERR CONFIG SET needs a breaker (or default) and key value pairs")
            }
            let pairs = stride(from: 2, to: end, by: 2).map { (key: args[$0].lowercased(), value: args[$0 + 1]) }
            do {
                if args[1] == "default" {
                    try await timed("config") { () async throws(StoreError) in try await store.setDefaultPolicy(pairs) }
                    let set = pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    logger.notice("default policy set", metadata: ["by": "\(session.actor)", "pairs": "\(set)", "why": "\(reason)"])
                    // The default policy has no breaker history: this line is what the audit keeps of it.
                    var line = "default config at=\(Self.unixMs()) set=\(set) by=\(session.actor)"
                    if !reason.isEmpty { line += " why=\(reason)" }
                    observer.defaultPolicyChanged(line)
                } else {
                    let name: BreakerName
                    do { name = try BreakerName(args[1]) } catch { return .error("ERR \(error)") }
                    let result = try await timed("config") { () async throws(StoreError) in
                        try await store.setPolicy(name, pairs, actor: session.actor, reason: reason)
                    }
                    logEvents(result.events)
                }
                return .ok()
            } catch {
                return storeError(error)
            }
        default:
            return .error("ERR unknown subcommand '\(args[0].prefix(64))'. Try CONFIG GET or CONFIG SET.")
        }
    }

    func force(_ args: [String], session: ConnectionSession) async -> CommandResult {
        guard args.count >= 2 else { return Self.wrongArity("force") }
        let name: BreakerName
        do { name = try BreakerName(args[0]) } catch { return .error("ERR \(error)") }
        let mode: BreakerMode
        switch args[1].uppercased() {
        case "OPEN": mode = .forcedOpen
        case "CLOSED": mode = .forcedClosed
        case "METRICS_ONLY": mode = .metricsOnly
        case "AUTO": mode = .auto
        default: return .error("ERR unknown mode '\(args[1].prefix(64))': expected OPEN, CLOSED, METRICS_ONLY or AUTO")
        }
        var ttl: Int?
        var reason = ""
        var i = 2
        while i < args.count {
            switch args[i].uppercased() {
            case "TTL" where i + 1 < args.count:
                guard let ms = Int(args[i + 1]), ms > 0 else {
                    return .error("ERR TTL must be a whole number of milliseconds > 0, got '\(args[i + 1].prefix(64))'")
                }
                ttl = ms
                i += 2
            case "REASON" where i + 1 < args.count:
                // The reason is the rest of the line, so an operator can type it without quotes.
                reason = args[(i + 1)...].joined(separator: " ")
                i = args.count
            default:
                return .error("ERR syntax error at '\(args[i].prefix(64))': expected TTL <ms> or REASON <text>")
            }
        }
        do {
            let result = try await timed("force") { () async throws(StoreError) in
                try await store.force(name, mode: mode, ttlMs: ttl, actor: session.actor, reason: reason)
            }
            logEvents(result.events)
            return CommandResult(.simpleString("OK \(result.state.rawValue) mode=\(result.mode.rawValue)"))
        } catch {
            return storeError(error)
        }
    }

    func reset(_ args: [String], session: ConnectionSession) async -> CommandResult {
        // RESET <breaker> [REASON <text>]: the reason is the rest of the line, as for FORCE.
        guard args.count == 1 || (args.count >= 3 && args[1].uppercased() == "REASON") else { return Self.wrongArity("reset") }
        let name: BreakerName
        do { name = try BreakerName(args[0]) } catch { return .error("ERR \(error)") }
        let reason = args.count >= 3 ? args[2...].joined(separator: " ") : ""
        do {
            let result = try await timed("reset") { () async throws(StoreError) in
                try await store.reset(name, actor: session.actor, reason: reason)
            }
            logEvents(result.events)
            return CommandResult(.simpleString("OK \(result.state.rawValue)"))
        } catch {
            return storeError(error)
        }
    }

    static func unixMs() -> Int { Int((Date().timeIntervalSince1970 * 1000).rounded()) }

    // MARK: Store outcomes

    /// A store call failed for want of Redis: counted (INFO `store_timeouts`). Whether the store is
    /// up or down is the Redis client's to say (its own breaker trips after consecutive misses and
    /// probes until Redis answers: `onStateChange` feeds `health`), so an outage logs one "store
    /// down" and one "store up", and a single slow call under load logs nothing.
    func storeUnavailable(_ error: StoreError) {
        stats.storeFailures.add(1, ordering: .relaxed)
    }

    /// The reply for a store failure; the connection goes on.
    func storeError(_ error: StoreError) -> CommandResult {
        switch error.code {
        case .unavailable:
            storeUnavailable(error)
            return .error("ERR store unavailable: \(error.message)")
        case .unknownPermit, .invalidPolicy, .invalidArgument:
            return .error("ERR \(error.message)")
        case .redis:
            logger.error("store error", metadata: ["error": "\(error.message)"])
            return .error("ERR store error: \(error.message)")
        }
    }
}
