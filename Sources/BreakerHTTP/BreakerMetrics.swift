import BreakerCore
import BreakerServer
import Foundation
import Prometheus
import Synchronization

/// This process's counters (acquires, reports, transitions, commands, store latency, the latencies
/// replicas report), kept in a Prometheus registry of its own, so several servers in one process
/// (tests) never share or clash. Every family is made through the registry with its HELP text
/// (swift-metrics' factory would leave them without one, which `promtool check metrics` refuses).
///
/// It is the server's `BreakerServerObserver`. Every label that a client chooses is bounded: breaker
/// names and replica names each get at most `maxBreakerLabels` / `maxReplicaLabels` distinct values,
/// first come first kept, and the rest count under `other`; a command breakerd does not know counts
/// as `other`.
public final class BreakerMetrics: BreakerServerObserver {
    /// The label value that every name past the bound shares.
    public static let overflowLabel = "other"

    public let registry: PrometheusCollectorRegistry
    private let breakerLabels: BoundedLabels
    private let replicaLabels: BoundedLabels
    private let counters = Mutex<[String: Prometheus.Counter]>([:])
    /// The hot path's counters (one per command, and per breaker or replica and result) found by a
    /// cheap key, without building the registry's label string on every call.
    private let commandCounters: [String: Prometheus.Counter]
    private let fast = Mutex<[FastKey: Prometheus.Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])
    private let storeUp: Gauge
    private let openConnections: Gauge
    private let sseClients: Gauge
    private let httpAuthFailures: Prometheus.Counter
    private let defaultChanges = Mutex<[String]>([])
    /// Denies answered per breaker (bounded as the labels are), for the status page's charts.
    private let denies = Mutex<[String: Int]>([:])
    private let maxDefaultChanges: Int
    /// When this process started, for `process_start_time_seconds`.
    let startedAt = Date()

    /// Store calls take tens of microseconds to a deadline of tens of milliseconds.
    static let storeBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .seconds(1),
    ]

    /// The calls replicas protect are RPCs: a millisecond on a fast path to seconds near a timeout.
    static let callBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// HELP text per family this class makes; one place, since a family's HELP must never differ.
    static let help: [String: String] = [
        "breakerd_commands_total": "Commands run by this process, by command (lowercased; unknown ones as other)",
        "breakerd_acquires_total": "ACQUIRE answers by this process, by breaker and result (permit, deny, degraded)",
        "breakerd_reports_total": "REPORTs accepted by this process, by breaker and outcome",
        "breakerd_replica_acquires_total": "ACQUIRE answers by this process, by the replica's client name and result",
        "breakerd_replica_reports_total": "REPORTs accepted by this process, by the replica's client name and outcome",
        "breakerd_transitions_total": "State changes that calls through this process made, by breaker, from and to",
        "breakerd_store_latency_seconds": "Time of each Redis call this process made, by operation",
        "breakerd_store_errors_total": "Redis calls of this process that failed, by operation",
        "breakerd_call_latency_seconds": "Latency of the protected calls, as replicas reported it (REPORT ... LATENCY ms), by breaker",
        "breakerd_store_up": "1 while Redis answers this process, 0 while it does not",
        "breakerd_open_connections": "RESP client connections open now",
        "breakerd_http_event_streams": "/events streams open now",
        "breakerd_http_auth_failures_total": "HTTP requests refused for missing or wrong credentials",
        "breakerd_auth_failures_total": "AUTH (and HELLO ... AUTH) attempts refused on the RESP port",
        "breakerd_outcomes_lost_total": "Acknowledged batched-mode outcomes that could not be folded into Redis within their retry budget, by breaker",
        "breakerd_connections_closed_total": "RESP connections this process closed itself, by reason (idle, partial_request, output_limit, reserve_unauthenticated)",
    ]

    public init(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        maxBreakerLabels: Int = 1000,
        maxReplicaLabels: Int = 100,
        maxDefaultChanges: Int = 50
    ) {
        self.registry = registry
        breakerLabels = BoundedLabels(limit: maxBreakerLabels)
        replicaLabels = BoundedLabels(limit: maxReplicaLabels)
        self.maxDefaultChanges = max(1, maxDefaultChanges)
        func gauge(_ name: String) -> Gauge { registry.makeGauge(name: name, help: Self.help[name] ?? "") }
        storeUp = gauge("breakerd_store_up")
        openConnections = gauge("breakerd_open_connections")
        sseClients = gauge("breakerd_http_event_streams")
        httpAuthFailures = registry.makeCounter(
            name: "breakerd_http_auth_failures_total", help: Self.help["breakerd_http_auth_failures_total"] ?? "")
        var commands: [String: Prometheus.Counter] = [:]
        for c in Self.knownCommands.union([Self.overflowLabel]) {
            commands[c] = registry.makeCounter(
                name: "breakerd_commands_total", labels: [("command", c)], help: Self.help["breakerd_commands_total"] ?? "")
        }
        commandCounters = commands
    }

    // MARK: BreakerServerObserver

    public func commandExecuted(_ name: String) {
        (commandCounters[name] ?? commandCounters[Self.overflowLabel])?.increment()
    }

    public func acquired(breaker: String, result: AcquireResultKind, replica: String) {
        labeled(.acquires, breaker, result.rawValue).increment()
        if result == .deny {
            let label = breakerLabels.label(for: breaker)
            denies.withLock { $0[label, default: 0] += 1 }
        }
        if !replica.isEmpty { labeled(.replicaAcquires, replica, result.rawValue).increment() }
    }

    public func reported(breaker: String, outcome: Outcome, replica: String) {
        reported(breaker: breaker, outcome: outcome, replica: replica, latencyMs: nil)
    }

    public func reported(breaker: String, outcome: Outcome, replica: String, latencyMs: Int?) {
        let outcome = outcome.rawValue.lowercased()
        labeled(.reports, breaker, outcome).increment()
        if !replica.isEmpty { labeled(.replicaReports, replica, outcome).increment() }
        if let latencyMs {
            histogram("breakerd_call_latency_seconds", [("breaker", breakerLabels.label(for: breaker))], Self.callBuckets)
                .record(.milliseconds(latencyMs))
        }
    }

    /// The counters whose first label a client chooses (a breaker or replica name).
    private enum Labeled: Int {
        case acquires, replicaAcquires, reports, replicaReports

        var metric: (name: String, label: String, value: String) {
            switch self {
            case .acquires: return ("breakerd_acquires_total", "breaker", "result")
            case .replicaAcquires: return ("breakerd_replica_acquires_total", "replica", "result")
            case .reports: return ("breakerd_reports_total", "breaker", "outcome")
            case .replicaReports: return ("breakerd_replica_reports_total", "replica", "outcome")
            }
        }
    }

    private struct FastKey: Hashable {
        let metric: Int
        let name: String
        let value: String
    }

    private func labeled(_ kind: Labeled, _ name: String, _ value: String) -> Prometheus.Counter {
        let key = FastKey(metric: kind.rawValue, name: name, value: value)
        if let c = fast.withLock({ $0[key] }) { return c }
        let labels = (kind == .acquires || kind == .reports) ? breakerLabels : replicaLabels
        let label = labels.label(for: name)
        let m = kind.metric
        let c = counter(m.name, [(m.label, label), (m.value, value)])
        // Only names kept as labels of their own are remembered here, so this map stays as bounded
        // as the labels are (a name past the bound, or cut to 64 bytes, takes the slow path).
        if label == name { fast.withLock { $0[key] = c } }
        return c
    }

    public func transitioned(breaker: String, from: BreakerState, to: BreakerState) {
        counter(
            "breakerd_transitions_total",
            [("breaker", breakerLabels.label(for: breaker)), ("from", from.rawValue), ("to", to.rawValue)]
        ).increment()
    }

    public func storeCall(_ operation: String, duration: Duration, succeeded: Bool) {
        let op = Self.storeOperations.contains(operation) ? operation : Self.overflowLabel
        histogram("breakerd_store_latency_seconds", [("operation", op)], Self.storeBuckets).record(duration)
        if !succeeded {
            counter("breakerd_store_errors_total", [("operation", op)]).increment()
        }
    }

    public func defaultPolicyChanged(_ line: String) {
        defaultChanges.withLock { list in
            list.insert(line, at: 0)
            if list.count > maxDefaultChanges { list.removeLast(list.count - maxDefaultChanges) }
        }
    }

    // MARK: Read by the HTTP side

    /// Changes to the fleet-wide default policy made through this process, newest first (kept in
    /// memory only: the default policy has no history in Redis).
    public var recentDefaultPolicyChanges: [String] { defaultChanges.withLock { $0 } }

    /// Denies this process answered so far, per breaker (names past the label bound under `other`).
    var deniesByBreaker: [String: Int] { denies.withLock { $0 } }

    /// An HTTP request was refused for its credentials.
    func httpAuthFailed() { httpAuthFailures.increment() }

    public func authFailed() {
        counter("breakerd_auth_failures_total", []).increment()
    }

    public func outcomesLost(breaker: String, count: Int) {
        counter("breakerd_outcomes_lost_total", [("breaker", breakerLabels.label(for: breaker))]).increment(by: Int64(count))
    }

    public func connectionClosed(reason: String) {
        counter("breakerd_connections_closed_total", [("reason", reason)]).increment()
    }

    /// Sets the gauges that describe this process now; called before each scrape.
    func update(storeUp up: Bool, openConnections connections: Int, eventStreams: Int) {
        storeUp.set(to: up ? 1.0 : 0.0)
        openConnections.set(to: Double(connections))
        sseClients.set(to: Double(eventStreams))
    }

    // MARK: Label bounds

    /// The commands breakerd knows, lowercased: the only values of the `command` label besides `other`.
    static let knownCommands: Set<String> = [
        "ping", "hello", "auth", "client", "select", "info", "command", "quit", "subscribe", "unsubscribe",
        "psubscribe", "punsubscribe", "acquire", "report", "state", "list", "history", "config", "force", "reset",
    ]

    static let storeOperations: Set<String> = [
        "acquire", "report", "state", "history", "list", "config", "force", "reset", "ping", "fold",
    ]

    private func counter(_ name: String, _ labels: [(String, String)]) -> Prometheus.Counter {
        let key = Self.key(name, labels)
        if let c = counters.withLock({ $0[key] }) { return c }
        let c = registry.makeCounter(name: name, labels: labels, help: Self.help[name] ?? "")
        counters.withLock { $0[key] = c }
        return c
    }

    private func histogram(_ name: String, _ labels: [(String, String)], _ buckets: [Duration]) -> DurationHistogram {
        let key = Self.key(name, labels)
        if let h = histograms.withLock({ $0[key] }) { return h }
        let h = registry.makeDurationHistogram(name: name, labels: labels, buckets: buckets, help: Self.help[name] ?? "")
        histograms.withLock { $0[key] = h }
        return h
    }

    private static func key(_ name: String, _ labels: [(String, String)]) -> String {
        var k = name
        for (l, v) in labels { k += "\u{0}\(l)=\(v)" }
        return k
    }
}

/// At most `limit` distinct label values, first come first kept; the rest share `other`.
final class BoundedLabels: Sendable {
    private let seen = Mutex<Set<String>>([])
    let limit: Int

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    func label(for value: String) -> String {
        // Client names are printable ASCII already; the cap on length keeps one series small.
        let v = String(value.prefix(64))
        return seen.withLock { s in
            if s.contains(v) { return v }
            guard s.count < limit else { return BreakerMetrics.overflowLabel }
            s.insert(v)
            return v
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
