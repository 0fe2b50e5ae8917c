import BreakerCore
import Hiredis
import Logging
import Synchronization

/// Every breaker's state in Redis: each decision is one atomic call of a function of the breakerd
/// library (Lua/breakerd.lua, Redis Functions) on Redis's clock, so any number of replicas and
/// breakerd processes sharing the Redis agree. Needs Redis 7.0 or newer.
public final class BreakerStore: Sendable {
    public let configuration: StoreConfiguration
    public let client: RedisClient
    private let logger: Logger
    /// Whether this process has loaded the library (FUNCTION LOAD REPLACE) since it started.
    private let loaded = Mutex(false)
    /// The fleet-wide default policy and its ARGV form, refreshed from Redis.
    private let defaults: Mutex<(policy: BreakerPolicy, argv: [[UInt8]])>

    public init(client: RedisClient, configuration: StoreConfiguration = .init(), logger: Logger = Logger(label: "breakerd.store")) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        defaults = Mutex((configuration.defaultPolicy, Self.policyArgv(configuration.defaultPolicy, configuration)))
    }

    // MARK: Breaker operations

    /// Asks for a permit to call the dependency behind `name`.
    /// `now` (unix ms) replaces Redis's clock; only tests pass it.
    public func acquire(_ name: BreakerName, now: Int? = nil) async throws(StoreError) -> AcquireResult {
        try AcquireResult(reply: try await run(.acquire, name, now: now, []))
    }

    /// Reports the outcome of a call made under `permit`. Without `latencyMs` the call's duration is
    /// measured from its acquire on Redis's clock.
    public func report(
        _ name: BreakerName, permit: String, outcome: Outcome, latencyMs: Int? = nil, now: Int? = nil
    ) async throws(StoreError) -> ReportResult {
        guard permit.utf8.count <= 64, !permit.isEmpty else {
            throw StoreError(.unknownPermit, "unknown permit '\(permit.prefix(64))' for breaker '\(name)'")
        }
        if let latencyMs, latencyMs < 0 {
            throw StoreError(.invalidArgument, "LATENCY must be a number of milliseconds >= 0")
        }
        let reply = try await run(.report, name, now: now, [permit, outcome.rawValue, latencyMs.map(String.init) ?? ""])
        if let error = reply.errorMessage, error.hasPrefix("UNKNOWN_PERMIT") {
            throw StoreError(.unknownPermit, "unknown permit '\(permit)' for breaker '\(name)'")
        }
        return try ReportResult(reply: reply)
    }

    /// Folds outcomes this process gathered under its own permits into the breaker: `calls` calls
    /// made in `generation`, of which `failures` failed and `slow` were slow. They count as that many
    /// reports would, with one trip check after them, if the breaker is closed in `generation` and
    /// its mode runs the state machine; otherwise they count nothing (`stale` for another
    /// generation). With no calls it only reads the breaker's state.
    ///
    /// `id` makes the fold apply once: the same id again within two minutes (a retry after a lost
    /// reply) applies nothing and answers with the first one's effect, `duplicate` set. It is an
    /// opaque text of 1 to 64 bytes, the same for every attempt to send one fold; nil for no
    /// deduplication.
    public func fold(
        _ name: BreakerName, generation: Int, calls: Int, failures: Int, slow: Int, id: String? = nil, now: Int? = nil
    ) async throws(StoreError) -> FoldResult {
        if let id, id.isEmpty || id.utf8.count > 64 {
            throw StoreError(.invalidArgument, "a fold id must be 1 to 64 bytes (got \(id.utf8.count))")
        }
        guard generation >= 0, calls >= 0, (0...calls).contains(failures), (0...calls).contains(slow) else {
            throw StoreError(
                .invalidArgument,
                "a fold needs a generation >= 0 and counts with 0 <= failures, slow <= calls (got generation \(generation), calls \(calls), failures \(failures), slow \(slow))")
        }
        return try FoldResult(
            reply: try await run(
                .fold, name, now: now, [String(generation), String(calls), String(failures), String(slow), id ?? ""],
                foldsKey: true))
    }

    /// The breaker's state and window figures, without changing anything.
    public func state(_ name: BreakerName, now: Int? = nil) async throws(StoreError) -> BreakerSnapshot {
        try snapshot(name, try await run(.state, name, now: now, []))
    }

    private func snapshot(_ name: BreakerName, _ reply: RedisReply) throws(StoreError) -> BreakerSnapshot {
        try BreakerSnapshot(name: name.value, reply: reply)
    }

    /// The states of many breakers, in order, read with pipelined FCALL_RO of the state function
    /// (500 to a round trip) rather than one task per breaker.
    public func states(_ names: [BreakerName], now: Int? = nil) async throws(StoreError) -> [BreakerSnapshot] {
        var snapshots: [BreakerSnapshot] = []
        snapshots.reserveCapacity(names.count)
        var start = 0
        while start < names.count {
            let chunk = names[start..<min(start + 500, names.count)]
            try await ensureLoaded()
            let commands = chunk.map { command(.state, name: $0, now: now, []) }
            var replies = try await send(pipeline: commands)
            if replies.contains(where: { $0.errorMessage.map(FunctionLibrary.isMissing) == true }) {
                try await reloadLibrary()
                replies = try await send(pipeline: commands)
            }
            for (name, reply) in zip(chunk, replies) {
                snapshots.append(try snapshot(name, reply))
            }
            start += 500
        }
        return snapshots
    }

    /// Sets (or lifts, with `.auto`) an operator's mode; `ttlMs` makes it lapse by itself.
    public func force(
        _ name: BreakerName, mode: BreakerMode, ttlMs: Int? = nil, actor: String, reason: String = "", now: Int? = nil
    ) async throws(StoreError) -> ControlResult {
        if let ttlMs, ttlMs <= 0 { throw StoreError(.invalidArgument, "TTL must be a number of milliseconds > 0") }
        return try await control(name, "force", actor: actor, reason: reason, now: now, [mode.rawValue, String(ttlMs ?? 0)])
    }

    /// Returns the breaker to closed and auto, with an empty window and no backoff.
    public func reset(_ name: BreakerName, actor: String, reason: String = "", now: Int? = nil) async throws(StoreError) -> ControlResult {
        try await control(name, "reset", actor: actor, reason: reason, now: now, [])
    }

    /// Sets policy keys for one breaker (the value `default` removes that key's override).
    /// The merged policy is validated first; concurrent changes to one breaker's policy may interleave.
    public func setPolicy(
        _ name: BreakerName, _ pairs: [(key: String, value: String)], actor: String, reason: String = ""
    ) async throws(StoreError) -> ControlResult {
        guard !pairs.isEmpty else { throw StoreError(.invalidArgument, "CONFIG SET needs at least one key and value") }
        let current = try await overrides(name)
        var merged = current.filter { c in !pairs.contains { $0.key == c.key } }
        for p in pairs where p.value != "default" { merged.append(p) }
        for p in pairs where !BreakerPolicy.keys.contains(p.key) {
            throw StoreError(.invalidPolicy, "\(p.key) is not a policy key (keys: \(BreakerPolicy.keys.joined(separator: ", ")))")
        }
        do {
            _ = try defaultPolicy().applying(merged)
        } catch {
            throw StoreError(.invalidPolicy, error.description)
        }
        var args: [String] = []
        for p in pairs {
            args.append(p.key)
            args.append(p.value == "default" ? "" : p.value)
        }
        return try await control(name, "config", actor: actor, reason: reason, now: nil, args)
    }

    /// The breaker's effective policy: the fleet default with its own overrides applied.
    public func policy(_ name: BreakerName) async throws(StoreError) -> BreakerPolicy {
        let o = try await overrides(name)
        // Overrides were validated when set; a key that no longer fits the current default is skipped.
        var p = defaultPolicy()
        for (k, v) in o { try? p.set(k, to: v) }
        return p
    }

    /// The history of `name`, newest first.
    public func history(_ name: BreakerName, count: Int = 20) async throws(StoreError) -> [String] {
        guard count > 0 else { throw StoreError(.invalidArgument, "the count must be a number > 0") }
        let keys = BreakerKeys(prefix: configuration.keyPrefix, name: name)
        let reply = try await send(["LRANGE", keys.history, "0", String(count - 1)])
        return reply.elements?.compactMap(\.text) ?? []
    }

    /// Names of breakers with state in Redis whose name matches `glob` (Redis glob syntax), sorted.
    /// Uses SCAN, so it never blocks Redis; on Redis Cluster it sees only the node it asks.
    public func list(glob: String = "*") async throws(StoreError) -> [String] {
        let prefix = configuration.keyPrefix + ":{"
        var cursor = "0"
        var names = Set<String>()
        repeat {
            let reply = try await send(["SCAN", cursor, "MATCH", "\(prefix)\(glob)}:s", "COUNT", "1000"])
            guard let e = reply.elements, e.count == 2, let next = e[0].text, let keys = e[1].elements else {
                throw unexpected(reply, "SCAN")
            }
            for k in keys.compactMap(\.text) where k.hasPrefix(prefix) && k.hasSuffix("}:s") {
                names.insert(String(k.dropFirst(prefix.count).dropLast(3)))
            }
            cursor = next
        } while cursor != "0"
        return names.sorted()
    }

    // MARK: The default policy

    /// The fleet-wide default policy as this process last read it.
    public func defaultPolicy() -> BreakerPolicy { defaults.withLock { $0.policy } }

    /// Sets fleet-wide default policy keys (the value `default` returns a key to the configured one).
    public func setDefaultPolicy(_ pairs: [(key: String, value: String)]) async throws(StoreError) {
        guard !pairs.isEmpty else { throw StoreError(.invalidArgument, "CONFIG SET needs at least one key and value") }
        let stored = try await storedDefaultOverrides()
        var merged = stored.filter { s in !pairs.contains { $0.key == s.key } }
        for p in pairs where p.value != "default" { merged.append(p) }
        for p in pairs where !BreakerPolicy.keys.contains(p.key) {
            throw StoreError(.invalidPolicy, "\(p.key) is not a policy key (keys: \(BreakerPolicy.keys.joined(separator: ", ")))")
        }
        do {
            _ = try configuration.defaultPolicy.applying(merged)
        } catch {
            throw StoreError(.invalidPolicy, error.description)
        }
        let key = configuration.defaultPolicyKey
        let set = pairs.filter { $0.value != "default" }.flatMap { [$0.key, $0.value] }
        let del = pairs.filter { $0.value == "default" }.map(\.key)
        var commands: [[String]] = []
        if !set.isEmpty { commands.append(["HSET", key] + set) }
        if !del.isEmpty { commands.append(["HDEL", key] + del) }
        for c in commands { _ = try await send(c) }
        try await refreshDefaults()
    }

    /// Reads the fleet-wide default policy from Redis. The server calls it periodically, so a change
    /// made through another breakerd reaches this one within `defaultsRefreshMs`.
    public func refreshDefaults() async throws(StoreError) {
        let stored = try await storedDefaultOverrides()
        var p = configuration.defaultPolicy
        for (k, v) in stored { try? p.set(k, to: v) }
        if (try? p.validate()) == nil { p = configuration.defaultPolicy }
        let policy = p
        let argv = Self.policyArgv(policy, configuration)
        defaults.withLock { $0 = (policy, argv) }
    }

    /// Checks that Redis is 7.0 or newer (INFO server), then loads the breakerd library with
    /// FUNCTION LOAD REPLACE. The store does this before its first call and again whenever Redis
    /// answers that a function is missing; calling it at start makes an unfit Redis fail there.
    public func loadScripts() async throws(StoreError) {
        try await loadLibrary()
    }

    /// What `loadScripts()` does, by the name it has since the scripts became one library.
    public func loadLibrary() async throws(StoreError) {
        let info = try await send(["INFO", "server"])
        guard let text = info.text else { throw unexpected(info, "INFO server") }
        try FunctionLibrary.checkVersion(info: text)
        let reply = try await send(bytes: [Array("FUNCTION".utf8), Array("LOAD".utf8), Array("REPLACE".utf8), FunctionLibrary.source])
        guard reply.text == FunctionLibrary.name else { throw unexpected(reply, "FUNCTION LOAD of \(FunctionLibrary.name)") }
        loaded.withLock { $0 = true }
    }

    // MARK: Internals

    private func overrides(_ name: BreakerName) async throws(StoreError) -> [(key: String, value: String)] {
        let keys = BreakerKeys(prefix: configuration.keyPrefix, name: name)
        return Self.pairs(try await send(["HGETALL", keys.config])).filter { BreakerPolicy.keys.contains($0.key) }
    }

    private func storedDefaultOverrides() async throws(StoreError) -> [(key: String, value: String)] {
        Self.pairs(try await send(["HGETALL", configuration.defaultPolicyKey])).filter { BreakerPolicy.keys.contains($0.key) }
    }

    private func control(
        _ name: BreakerName, _ action: String, actor: String, reason: String, now: Int?, _ args: [String]
    ) async throws(StoreError) -> ControlResult {
        // Event lines are space-separated: the actor must be one word; the reason goes last.
        let actorWord = actor.isEmpty ? "unknown" : String(actor.map { $0 == " " || $0 == "\n" || $0 == "\r" ? "_" : $0 })
        let why = String(reason.map { $0 == "\n" || $0 == "\r" ? " " : $0 }.prefix(512))
        return try ControlResult(reply: try await run(.control, name, now: now, [action, actorWord, why] + args))
    }

    /// Calls one function of the library; when Redis answers that it is missing (restarted without
    /// persistence, FUNCTION FLUSH, a node that never had it) loads the library again and retries once.
    private func run(
        _ function: FunctionLibrary.Function, _ name: BreakerName, now: Int?, _ args: [String], foldsKey: Bool = false
    ) async throws(StoreError) -> RedisReply {
        try await ensureLoaded()
        let command = command(function, name: name, now: now, args, foldsKey: foldsKey)
        let reply = try await send(bytes: command)
        if let error = reply.errorMessage, FunctionLibrary.isMissing(error) {
            try await reloadLibrary()
            return try await send(bytes: command)
        }
        return reply
    }

    private func ensureLoaded() async throws(StoreError) {
        if !loaded.withLock({ $0 }) { try await loadLibrary() }
    }

    private func reloadLibrary() async throws(StoreError) {
        logger.info("Redis lost the breakerd function library; loading it again")
        try await loadLibrary()
    }

    /// The FCALL that runs `function` for one breaker: its five keys (six for a fold: the fold ids),
    /// then ARGV (see the top of breakerd.lua).
    private func command(
        _ function: FunctionLibrary.Function, name: BreakerName, now: Int?, _ args: [String], foldsKey: Bool = false
    ) -> [[UInt8]] {
        let keys = BreakerKeys(prefix: configuration.keyPrefix, name: name)
        var command: [[UInt8]] = [Array(function.command.utf8), Array(function.name.utf8), Array((foldsKey ? "6" : "5").utf8)]
        command.reserveCapacity(13 + args.count)
        for k in keys.all { command.append(Array(k.utf8)) }
        if foldsKey { command.append(Array(Self.foldsKey(keys).utf8)) }
        command.append(now.map { Array(String($0).utf8) } ?? [])
        command.append(contentsOf: defaults.withLock { $0.argv })
        command.append(Array(name.value.utf8))
        for a in args { command.append(Array(a.utf8)) }
        return command
    }

    /// The fold ids applied lately: `<prefix>:{name}:f`, under the breaker's hash tag.
    static func foldsKey(_ keys: BreakerKeys) -> String {
        String(keys.state.dropLast()) + "f"
    }

    private func send(pipeline commands: [[[UInt8]]]) async throws(StoreError) -> [RedisReply] {
        do {
            return try await client.send(pipeline: commands)
        } catch {
            throw StoreError(error)
        }
    }

    private func send(_ command: [String]) async throws(StoreError) -> RedisReply {
        try await send(bytes: command.map { Array($0.utf8) })
    }

    private func send(bytes command: [[UInt8]]) async throws(StoreError) -> RedisReply {
        do {
            return try await client.send(command)
        } catch {
            throw StoreError(error)
        }
    }

    private func unexpected(_ reply: RedisReply, _ what: String) -> StoreError {
        if let e = reply.errorMessage { return StoreError.refused(what, e) }
        return StoreError(.redis, "unexpected reply to \(what): \(reply)")
    }

    /// ARGV[2...4] (see breakerd.lua): the policy's twelve values in one text, in `BreakerPolicy.keys`
    /// order; idle ttl and history cap; the events channel.
    private static func policyArgv(_ p: BreakerPolicy, _ c: StoreConfiguration) -> [[UInt8]] {
        [
            Array(p.values.map(\.value).joined(separator: " ").utf8),
            Array("\(c.idleTTLMs) \(c.historyLength)".utf8),
            Array(c.eventsChannel.utf8),
        ]
    }

    private static func pairs(_ reply: RedisReply) -> [(key: String, value: String)] {
        guard let e = reply.elements else { return [] }
        return stride(from: 0, to: e.count - 1, by: 2).map { (e[$0].text ?? "", e[$0 + 1].text ?? "") }
    }
}
