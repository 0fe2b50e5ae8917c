import BreakerCore
import Logging
import NIOCore
import NIOPosix
import RESP
import Synchronization

/// A client of a breakerd fleet: `run` for replicas, and the lower-level commands for everything else.
///
/// One instance per process is enough: it pools connections per address, pipelines requests on
/// them, gives every request a deadline, fails over between addresses and reconnects by itself.
/// Call `shutdown()` before the process ends so outcomes still being reported are sent.
public final class BreakerClient: Sendable {
    public let configuration: BreakerClientConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    let pools: [AddressPool]
    let openStates = OpenStateCache()
    let localBreakers: LocalBreakers?
    let reports = ReportTracker()
    let watcher = Mutex<Task<Void, Never>?>(nil)
    let watcherStarted = Atomic<Bool>(false)

    /// Creates a client; nothing connects until the first request.
    public init(
        configuration: BreakerClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "breaker-client")
    ) {
        precondition(!configuration.addresses.isEmpty, "BreakerClient needs at least one address")
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        if case .local(let policy) = configuration.whenUnavailable {
            localBreakers = LocalBreakers(policy: policy)
        } else {
            localBreakers = nil
        }
        let c = configuration
        pools = configuration.addresses.map { address in
            AddressPool(
                address: address, size: c.connectionsPerAddress, backoff: c.reconnectBackoff,
                maxBackoff: c.maxReconnectBackoff
            ) { address in
                try await ClientConnection.connect(
                    to: address, group: eventLoopGroup, connectTimeout: c.connectTimeout,
                    deadline: .now() + TimeAmount(c.requestTimeout), user: c.user, password: c.password,
                    clientName: c.clientName)
            }
        }
    }

    /// A client of the breakerd processes at `addresses` (`host:port`), with the default configuration.
    public convenience init(addresses: [String], password: String? = nil) throws(BreakerClientError) {
        var list: [BreakerAddress] = []
        for a in addresses { list.append(try BreakerAddress(parsing: a)) }
        self.init(configuration: BreakerClientConfiguration(addresses: list, password: password))
    }

    /// Waits (up to `timeout`) for outcomes still being reported, stops the event subscription and
    /// closes every connection.
    public func shutdown(timeout: Duration = .seconds(2)) async {
        await reports.drain(timeout: timeout)
        watcher.withLock { $0?.cancel() }
        for pool in pools { pool.shutdown() }
    }

    /// Waits until every outcome `run` has handed off has been reported (or given up on).
    public func flushReports(timeout: Duration = .seconds(2)) async {
        await reports.drain(timeout: timeout)
    }

    // MARK: - Requests

    /// Sends one command and returns its reply; error replies throw `BreakerClientError` (`refused`).
    ///
    /// Tries the addresses in order, skipping those marked down. A request that never reached a
    /// socket goes on to the next address; so does one whose connection closed unanswered, when it
    /// is safe to send twice (everything but ACQUIRE: a second ACQUIRE could take a half-open trial
    /// place nobody reports). A missed deadline is not retried: the deadline is the whole request's.
    func request(_ arguments: [String], retrySafe: Bool = true) async throws -> RESPValue {
        let deadline = NIODeadline.now() + TimeAmount(configuration.requestTimeout)
        var lastError: BreakerClientError?
        let candidates = pools.filter { !$0.isDown }
        if candidates.isEmpty {
            throw BreakerClientError(
                .unreachable,
                "no breakerd is up (\(pools.map { "\($0.address)" }.joined(separator: ", ")) marked down)")
        }
        for pool in candidates {
            guard NIODeadline.now() < deadline else { break }
            let connection: ClientConnection
            do {
                connection = try await withDeadline(deadline, address: pool.address) {
                    try await pool.connection()
                }
            } catch let error as BreakerClientError where error.isUnavailable {
                lastError = error
                continue
            }
            do {
                let reply = try await connection.send(arguments, deadline: deadline)
                if case .error(let text) = reply { throw BreakerClientError.refused(text) }
                localBreakers?.forgetAll()
                return reply
            } catch let error as BreakerClientError where error.code == .timeout {
                pool.markDown()
                throw error
            } catch let error as BreakerClientError where error.code == .connectionClosed {
                lastError = error
                if error == ClientConnection.notSent || retrySafe { continue }
                throw error
            }
        }
        throw lastError ?? BreakerClientError(.timeout, "no breakerd answered in time")
    }

    private func withDeadline<T: Sendable>(
        _ deadline: NIODeadline, address: BreakerAddress,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                let wait = deadline - NIODeadline.now()
                if wait > .zero { try await Task.sleep(nanoseconds: UInt64(wait.nanoseconds)) }
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw BreakerClientError(.timeout, "\(address) did not accept a connection in time")
            }
            return value
        }
    }

    func line(_ arguments: [String], retrySafe: Bool = true) async throws -> String {
        let reply = try await request(arguments, retrySafe: retrySafe)
        guard let text = reply.text else { throw BreakerClientError.unexpected("\(reply)") }
        return text
    }

    func lines(_ arguments: [String]) async throws -> [String] {
        let reply = try await request(arguments)
        guard case .array(let elements) = reply else { throw BreakerClientError.unexpected("\(reply)") }
        return try elements.map { e in
            guard let t = e.text else { throw BreakerClientError.unexpected("\(e)") }
            return t
        }
    }

    // MARK: - Commands

    /// ACQUIRE: a permit or a deny from breakerd (no local cache, no unavailable policy: see `run`).
    public func acquire(_ breaker: String) async throws -> Acquisition {
        let name = try BreakerName(breaker).value
        let text = try await line(["ACQUIRE", name], retrySafe: false)
        let words = text.split(separator: " ")
        let degraded = words.last == "degraded"
        let source: DecisionSource = degraded ? .breakerdDegraded : .breakerd
        switch words.first {
        case "PERMIT" where words.count >= 3:
            guard let state = BreakerState(rawValue: String(words[2])) else {
                throw BreakerClientError.unexpected(text)
            }
            return Acquisition(decision: .permit(permit: String(words[1]), state: state), source: source)
        case "DENY" where words.count >= 3:
            guard let state = BreakerState(rawValue: String(words[1])), let retry = Int(words[2]) else {
                throw BreakerClientError.unexpected(text)
            }
            if !degraded && configuration.cachesOpenState {
                openStates.learn(name, state: state, retryAfterMs: retry)
            }
            return Acquisition(decision: .deny(state: state, retryAfterMs: retry), source: source)
        default:
            throw BreakerClientError.unexpected(text)
        }
    }

    /// REPORT: the outcome of a permitted call, with its latency when known; returns the breaker's state.
    @discardableResult
    public func report(_ breaker: String, permit: String, outcome: Outcome, latency: Duration? = nil)
        async throws
        -> BreakerState
    {
        var args = ["REPORT", try BreakerName(breaker).value, permit, outcome.rawValue]
        if let latency { args += ["LATENCY", String(max(0, latency.milliseconds))] }
        return try Self.okState(try await line(args))
    }

    /// The state in an `OK <state> ...` reply.
    private static func okState(_ text: String) throws(BreakerClientError) -> BreakerState {
        let words = text.split(separator: " ")
        guard words.first == "OK", words.count >= 2,
            let state = BreakerState(rawValue: String(words[1]))
        else {
            throw BreakerClientError.unexpected(text)
        }
        return state
    }

    /// STATE: the breaker now. An unknown breaker reads as a fresh closed one (see `exists`).
    public func state(_ breaker: String) async throws -> BreakerStatus {
        try BreakerStatus(parsing: try await line(["STATE", try BreakerName(breaker).value]))
    }

    /// LIST: every breaker with state in Redis whose name matches the glob, sorted by name.
    public func list(_ glob: String? = nil) async throws -> [BreakerStatus] {
        try await lines(["LIST"] + (glob.map { [$0] } ?? [])).map { line throws(BreakerClientError) in
            try BreakerStatus(parsing: line)
        }
    }

    /// HISTORY: the breaker's events, newest first (count 1...10000).
    public func history(_ breaker: String, count: Int = 20) async throws -> [BreakerEvent] {
        try await lines(["HISTORY", try BreakerName(breaker).value, String(count)]).map {
            line throws(BreakerClientError) in
            try BreakerEvent(parsing: line)
        }
    }

    /// Whether breakerd knows the breaker: it has state in Redis (LIST finds it) or a history.
    /// STATE alone cannot tell, since it answers a fresh closed breaker for any name.
    public func exists(_ breaker: String) async throws -> Bool {
        let name = try BreakerName(breaker).value
        // Names hold no glob characters, so the name as a pattern matches only itself.
        if try await !list(name).isEmpty { return true }
        return try await !history(name, count: 1).isEmpty
    }

    /// FORCE (admin): an operator's mode, with an optional expiry and reason; returns state and mode.
    @discardableResult
    public func force(
        _ breaker: String, mode: BreakerMode, ttl: Duration? = nil, reason: String? = nil
    ) async throws
        -> (state: BreakerState, mode: BreakerMode)
    {
        let word: String
        switch mode {
        case .forcedOpen: word = "OPEN"
        case .forcedClosed: word = "CLOSED"
        case .metricsOnly: word = "METRICS_ONLY"
        case .auto: word = "AUTO"
        }
        var args = ["FORCE", try BreakerName(breaker).value, word]
        if let ttl { args += ["TTL", String(ttl.milliseconds)] }
        if let reason { args += ["REASON", reason] }
        let text = try await line(args)
        let words = text.split(separator: " ")
        guard words.first == "OK", words.count >= 3,
            let state = BreakerState(rawValue: String(words[1])),
            words[2].hasPrefix("mode="), let m = BreakerMode(rawValue: String(words[2].dropFirst(5)))
        else { throw BreakerClientError.unexpected(text) }
        return (state, m)
    }

    /// RESET (admin): closed, auto, an empty window and no backoff.
    @discardableResult
    public func reset(_ breaker: String) async throws -> BreakerState {
        let name = try BreakerName(breaker).value
        let text = try await line(["RESET", name])
        openStates.forget(name)
        return try Self.okState(text)
    }

    /// CONFIG GET: the effective policy of a breaker, or of `default` (the fleet default), in documented order.
    public func config(_ breaker: String) async throws -> [PolicySetting] {
        let target = breaker == "default" ? breaker : try BreakerName(breaker).value
        let text = try await line(["CONFIG", "GET", target])
        return text.split(separator: " ").compactMap { (word: Substring) -> PolicySetting? in
            let pair = word.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return nil }
            return PolicySetting(key: String(pair[0]), value: String(pair[1]))
        }
    }

    /// CONFIG SET (admin): policy keys of a breaker or of `default`; the value `default` removes a breaker's override.
    public func setConfig(_ breaker: String, _ settings: [PolicySetting]) async throws {
        let target = breaker == "default" ? breaker : try BreakerName(breaker).value
        _ = try await line(["CONFIG", "SET", target] + settings.flatMap { [$0.key, $0.value] })
    }

    /// PING to one address (a fresh connection, with AUTH as configured); the round trip.
    public func ping(_ address: BreakerAddress) async throws -> Duration {
        let start = ContinuousClock.now
        let deadline = NIODeadline.now() + TimeAmount(configuration.requestTimeout)
        let c = configuration
        let connection = try await withDeadline(deadline, address: address) { [group] in
            try await ClientConnection.connect(
                to: address, group: group, connectTimeout: c.connectTimeout, deadline: deadline,
                user: c.user,
                password: c.password, clientName: c.clientName)
        }
        defer { connection.close() }
        let reply = try await connection.send(["PING"], deadline: deadline)
        if case .error(let text) = reply { throw BreakerClientError.refused(text) }
        return start.duration(to: .now)
    }

    /// Sends any command and returns breakerd's reply as it came (error replies throw).
    public func command(_ arguments: [String]) async throws -> RESPValue {
        try await request(arguments)
    }
}

/// The answer to `acquire`, and who gave it.
public struct Acquisition: Sendable, Hashable {
    public var decision: AcquireDecision
    public var source: DecisionSource
}

/// One policy key and its value, as CONFIG speaks them.
public struct PolicySetting: Sendable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

extension RESPValue {
    /// The text of a status line or bulk string.
    var text: String? {
        switch self {
        case .simpleString(let s), .verbatim(let s): return s
        case .bulkString(let b): return String(buffer: b)
        default: return nil
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (s, atto) = duration.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}

/// The reports `run` has handed off and not yet finished, so `shutdown` can wait for them.
final class ReportTracker: Sendable {
    private let state = Mutex<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))

    func add(_ body: @escaping @Sendable () async -> Void) {
        state.withLock { s in
            let id = s.next
            s.next += 1
            s.tasks[id] = Task { [weak self] in
                await body()
                self?.state.withLock { _ = $0.tasks.removeValue(forKey: id) }
            }
        }
    }

    func drain(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let tasks = state.withLock { Array($0.tasks.values) }
            if tasks.isEmpty { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
