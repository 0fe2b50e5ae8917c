import BreakerCore
import BreakerServer
import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// This process's counters (acquires, reports, transitions, commands, store latency), kept with
/// swift-metrics in a Prometheus registry of its own, so several servers in one process (tests)
/// never share or clash, and the global `MetricsSystem` is left alone.
///
/// It is the server's `BreakerServerObserver`. Every label that a client chooses is bounded: breaker
/// names and replica names each get at most `maxBreakerLabels` / `maxReplicaLabels` distinct values,
/// first come first kept, and the rest count under `other`; a command breakerd does not know counts
/// as `other`.
public final class BreakerMetrics: BreakerServerObserver {
    /// The label value that every name past the bound shares.
    public static let overflowLabel = "other"

    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let breakerLabels: BoundedLabels
    private let replicaLabels: BoundedLabels
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    /// The hot path's counters (one per command, and per breaker or replica and result) found by a
    /// cheap key, without building the registry's label string on every call.
    private let commandCounters: [String: CoreMetrics.Counter]
    private let fast = Mutex<[FastKey: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
    private let storeUp: Meter
    private let openConnections: Meter
    private let sseClients: Meter
    private let defaultChanges = Mutex<[String]>([])
    private let maxDefaultChanges: Int

    public init(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        maxBreakerLabels: Int = 1000,
        maxReplicaLabels: Int = 100,
        maxDefaultChanges: Int = 50
    ) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Store calls take tens of microseconds to a deadline of tens of milliseconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .seconds(1),
        ]
        self.factory = factory
        breakerLabels = BoundedLabels(limit: maxBreakerLabels)
        replicaLabels = BoundedLabels(limit: maxReplicaLabels)
        self.maxDefaultChanges = max(1, maxDefaultChanges)
        storeUp = Meter(label: "breakerd_store_up", factory: factory)
        openConnections = Meter(label: "breakerd_open_connections", factory: factory)
        sseClients = Meter(label: "breakerd_http_event_streams", factory: factory)
        var commands: [String: CoreMetrics.Counter] = [:]
        for c in Self.knownCommands.union([Self.overflowLabel]) {
            commands[c] = CoreMetrics.Counter(label: "breakerd_commands_total", dimensions: [("command", c)], factory: factory)
        }
        commandCounters = commands
    }

    // MARK: BreakerServerObserver

    public func commandExecuted(_ name: String) {
        (commandCounters[name] ?? commandCounters[Self.overflowLabel])?.increment()
    }

    public func acquired(breaker: String, result: AcquireResultKind, replica: String) {
        labeled(.acquires, breaker, result.rawValue).increment()
        if !replica.isEmpty { labeled(.replicaAcquires, replica, result.rawValue).increment() }
    }

    public func reported(breaker: String, outcome: Outcome, replica: String) {
        let outcome = outcome.rawValue.lowercased()
        labeled(.reports, breaker, outcome).increment()
        if !replica.isEmpty { labeled(.replicaReports, replica, outcome).increment() }
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

    private func labeled(_ kind: Labeled, _ name: String, _ value: String) -> CoreMetrics.Counter {
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
        timer("breakerd_store_latency_seconds", [("operation", op)]).recordNanoseconds(duration.nanoseconds)
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

    /// Sets the gauges that describe this process now; called before each scrape.
    func update(storeUp up: Bool, openConnections connections: Int, eventStreams: Int) {
        storeUp.set(up ? 1.0 : 0.0)
        openConnections.set(Double(connections))
        sseClients.set(Double(eventStreams))
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

    private func counter(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Counter {
        let key = Self.key(name, labels)
        if let c = counters.withLock({ $0[key] }) { return c }
        let c = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
        counters.withLock { $0[key] = c }
        return c
    }

    private func timer(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Timer {
        let key = Self.key(name, labels)
        if let t = timers.withLock({ $0[key] }) { return t }
        let t = CoreMetrics.Timer(label: name, dimensions: labels, factory: factory)
        timers.withLock { $0[key] = t }
        return t
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
