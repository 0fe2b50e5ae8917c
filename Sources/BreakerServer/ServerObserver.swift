import BreakerCore

/// How an ACQUIRE was answered, for counting: from the shared state (permit or deny), or by the
/// degraded policy while the store could not answer.
public enum AcquireResultKind: String, Sendable, Hashable, CaseIterable {
    case permit
    case deny
    case degraded
}

/// Told about the work the server does, so metrics can count it. Calls come from any task or
/// thread, on the request path: an observer must be cheap and must never block.
public protocol BreakerServerObserver: Sendable {
    /// A command was run; `name` is lowercased, or `other` for a command breakerd does not know.
    func commandExecuted(_ name: String)
    /// An ACQUIRE was answered. `replica` is the connection's client name, empty when it has none.
    func acquired(breaker: String, result: AcquireResultKind, replica: String)
    /// A REPORT was accepted. `replica` as for `acquired`.
    func reported(breaker: String, outcome: Outcome, replica: String)
    /// A REPORT was accepted; `latencyMs` is the call's latency the replica gave (`LATENCY <ms>`),
    /// nil when it gave none. Observers that want the latency implement this one.
    func reported(breaker: String, outcome: Outcome, replica: String, latencyMs: Int?)
    /// A store call this process made moved a breaker from one state to another.
    func transitioned(breaker: String, from: BreakerState, to: BreakerState)
    /// One store call (a script or a read) took `duration`; `operation` names it (acquire, report, ...).
    func storeCall(_ operation: String, duration: Duration, succeeded: Bool)
    /// An operator changed the fleet-wide default policy through this process (it has no breaker
    /// history to land in).
    func defaultPolicyChanged(_ line: String)
    /// An AUTH (or HELLO ... AUTH) was refused.
    func authFailed()
    /// Batched mode could not fold `count` acknowledged outcomes into Redis: they are lost.
    func outcomesLost(breaker: String, count: Int)
    /// A limit closed a connection: `idle`, `partial_request`, `output_limit`, `reserve_unauthenticated`.
    func connectionClosed(reason: String)
}

extension BreakerServerObserver {
    public func commandExecuted(_ name: String) {}
    public func acquired(breaker: String, result: AcquireResultKind, replica: String) {}
    public func reported(breaker: String, outcome: Outcome, replica: String) {}
    public func reported(breaker: String, outcome: Outcome, replica: String, latencyMs: Int?) {
        reported(breaker: breaker, outcome: outcome, replica: replica)
    }
    public func transitioned(breaker: String, from: BreakerState, to: BreakerState) {}
    public func storeCall(_ operation: String, duration: Duration, succeeded: Bool) {}
    public func defaultPolicyChanged(_ line: String) {}
    public func authFailed() {}
    public func outcomesLost(breaker: String, count: Int) {}
    public func connectionClosed(reason: String) {}
}

/// The observer of a server nobody watches.
struct NoObserver: BreakerServerObserver {}

/// What this build of breakerd calls itself (INFO's `breakerd_version`, /metrics' `breakerd_build_info`).
public enum BreakerdBuild {
    public static var version: String { CommandDispatcher.breakerdVersion }
}
