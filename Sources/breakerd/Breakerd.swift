import ArgumentParser
import BreakerCore
import BreakerHTTP
import BreakerServer
import BreakerStore
import Foundation
import Hiredis
import Logging
import ServiceLifecycle

/// breakerd: flags and environment -> logger -> Redis (given or embedded) -> store -> server ->
/// service group. Everything with logic lives in BreakerServer.
@main
struct Breakerd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "breakerd",
        abstract: "A fleet-wide circuit breaker: replicas ACQUIRE and REPORT over the Redis protocol; state lives in Redis.",
        discussion: """
            Every option can also be set by the environment variable named in its help; a flag wins over it.
            Without --redis, breakerd starts a private redis-server on a unix socket: that state is shared
            with nobody beyond this host.
            """,
        version: BreakerdBuild.version
    )

    @Option(help: "Address to listen on, HOST:PORT (env BREAKERD_LISTEN).")
    var listen: String = env("BREAKERD_LISTEN") ?? "127.0.0.1:7420"

    @Option(help: "Address of the operators' HTTP endpoint (/metrics, /api/breakers, /healthz, the status page), HOST:PORT, or off (env BREAKERD_HTTP).")
    var http: String = env("BREAKERD_HTTP") ?? "127.0.0.1:7421"

    @Option(
        help: """
            Bearer token every HTTP path but /healthz needs; basic auth as admin with --admin-password works too. \
            Required when --http is beyond loopback (env BREAKERD_HTTP_TOKEN).
            """)
    var httpToken: String?

    @Option(help: "A token that opens /metrics only, for Prometheus (env BREAKERD_METRICS_TOKEN).")
    var metricsToken: String?

    @Flag(help: "Serve /metrics without credentials even when --http-token is set (env BREAKERD_METRICS_PUBLIC=1 or true).")
    var metricsPublic = false

    @Option(help: "Shared Redis: redis://[user:password@]host:port[/db] or unix:///path (env BREAKERD_REDIS). Default: a private redis-server.")
    var redis: String?

    @Option(help: "Password of the default user: ACQUIRE, REPORT and reads (env BREAKERD_PASSWORD). Default: none.")
    var password: String?

    @Option(help: "Password of the admin user: also CONFIG SET, FORCE, RESET (env BREAKERD_ADMIN_PASSWORD). Default: none.")
    var adminPassword: String?

    @Option(help: "Deadline of every Redis call in ms; past it ACQUIRE answers by --degraded (env BREAKERD_STORE_DEADLINE_MS).")
    var storeDeadlineMs: Int = env("BREAKERD_STORE_DEADLINE_MS").flatMap { Int($0) } ?? 50

    @Option(help: "How ACQUIRE answers while Redis cannot: local, allow or deny (env BREAKERD_DEGRADED).")
    var degraded: String = env("BREAKERD_DEGRADED") ?? "local"

    @Option(help: "Prefix of every Redis key; deployments sharing a Redis use different ones (env BREAKERD_KEY_PREFIX).")
    var keyPrefix: String = env("BREAKERD_KEY_PREFIX") ?? "breakerd"

    @Option(
        name: .customLong("policy"),
        help: "Default policy key=value, repeatable, e.g. --policy window_ms=30000 (env BREAKERD_POLICY, space-separated pairs)."
    )
    var policies: [String] = []

    @Option(
        help: """
            strict: every ACQUIRE and REPORT is one script in Redis. batched: breakers known closed get permits \
            from this process and their outcomes reach Redis once per --flush-ms, so a trip may come up to that \
            much later; breakers known open are denied here; half-open trials always go to Redis (env BREAKERD_CONSISTENCY).
            """)
    var consistency: String = env("BREAKERD_CONSISTENCY") ?? "strict"

    @Option(help: "Batched mode: how often outcomes are folded into Redis, in ms, 1 to 1000 (env BREAKERD_FLUSH_MS).")
    var flushMs: Int = env("BREAKERD_FLUSH_MS").flatMap { Int($0) } ?? 10

    @Option(help: "Most client connections served at once (env BREAKERD_MAX_CLIENTS).")
    var maxClients: Int = env("BREAKERD_MAX_CLIENTS").flatMap { Int($0) } ?? 10_000

    @Option(help: "Close a connection idle this many seconds, with nothing in flight and no subscription; 0: never (env BREAKERD_TIMEOUT).")
    var timeout: Int = env("BREAKERD_TIMEOUT").flatMap { Int($0) } ?? 0

    @Option(help: "Close a connection whose request is begun and not finished within this many ms; 0: never (env BREAKERD_REQUEST_TIMEOUT_MS).")
    var requestTimeoutMs: Int = env("BREAKERD_REQUEST_TIMEOUT_MS").flatMap { Int($0) } ?? 5000

    @Option(help: "Most connections from one peer address at once; 0: no limit (env BREAKERD_MAX_CLIENTS_PER_PEER).")
    var maxClientsPerPeer: Int = env("BREAKERD_MAX_CLIENTS_PER_PEER").flatMap { Int($0) } ?? 0

    @Option(help: "Connections kept past --max-clients for an admin's AUTH (needs --admin-password) (env BREAKERD_ADMIN_RESERVED).")
    var adminReserved: Int = env("BREAKERD_ADMIN_RESERVED").flatMap { Int($0) } ?? 16

    @Option(help: "When Redis's maxmemory-policy could evict breaker keys (anything but noeviction): refuse to start, or warn (env BREAKERD_EVICTION_CHECK).")
    var evictionCheck: String = env("BREAKERD_EVICTION_CHECK") ?? "refuse"

    @Option(help: "trace, debug, info, notice, warning, error or critical (env BREAKERD_LOG_LEVEL).")
    var logLevel: String = env("BREAKERD_LOG_LEVEL") ?? "info"

    func run() async throws {
        guard let address = ListenAddress(listen) else { throw ValidationError("--listen must be HOST:PORT, got '\(listen)'") }
        let httpAddress = ListenAddress(http)
        guard httpAddress != nil || http == "off" else { throw ValidationError("--http must be HOST:PORT or off, got '\(http)'") }
        guard let degradedPolicy = DegradedPolicy(rawValue: degraded) else {
            throw ValidationError("--degraded must be local, allow or deny, got '\(degraded)'")
        }
        let consistencyMode: ConsistencyMode
        switch consistency {
        case "strict": consistencyMode = .strict
        case "batched":
            guard (1...1000).contains(flushMs) else { throw ValidationError("--flush-ms must be 1 to 1000, got \(flushMs)") }
            consistencyMode = .batched(flushMs: flushMs)
        default: throw ValidationError("--consistency must be strict or batched, got '\(consistency)'")
        }
        guard let eviction = EvictionCheck(rawValue: evictionCheck) else {
            throw ValidationError("--eviction-check must be refuse or warn, got '\(evictionCheck)'")
        }
        for (flag, value) in [("--timeout", timeout), ("--request-timeout-ms", requestTimeoutMs), ("--max-clients-per-peer", maxClientsPerPeer), ("--admin-reserved", adminReserved)]
        where value < 0 {
            throw ValidationError("\(flag) must be 0 or more, got \(value)")
        }
        var httpConfiguration = HTTPConfiguration(host: httpAddress?.host ?? "127.0.0.1", port: httpAddress?.port ?? 0)
        httpConfiguration.token = httpToken ?? Self.env("BREAKERD_HTTP_TOKEN")
        httpConfiguration.metricsToken = metricsToken ?? Self.env("BREAKERD_METRICS_TOKEN")
        httpConfiguration.metricsPublic = metricsPublic || ["1", "true", "yes"].contains(Self.env("BREAKERD_METRICS_PUBLIC") ?? "")
        httpConfiguration.adminPassword = adminPassword ?? Self.env("BREAKERD_ADMIN_PASSWORD")
        if httpAddress != nil, let problem = httpConfiguration.problem() { throw ValidationError(problem) }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        if let problem = BreakerKeys.validatePrefix(keyPrefix) { throw ValidationError("--key-prefix: \(problem)") }
        var policy = BreakerPolicy()
        let pairs = policies.isEmpty ? (Self.env("BREAKERD_POLICY") ?? "").split(separator: " ").map(String.init) : policies
        for pair in pairs {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ValidationError("--policy must be key=value, got '\(pair)'") }
            do { try policy.set(kv[0], to: kv[1]) } catch { throw ValidationError("--policy \(error)") }
        }
        do { try policy.validate() } catch { throw ValidationError("--policy \(error)") }

        MemoryReturner.limitArenas()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "breakerd")

        var embedded: EmbeddedRedis?
        let endpoint: RedisEndpoint
        if let url = redis ?? Self.env("BREAKERD_REDIS") {
            endpoint = try RedisEndpoint(url: url)
        } else {
            let server = try EmbeddedRedis()
            embedded = server
            endpoint = server.endpoint
            logger.warning(
                "no --redis given: started a private redis-server; this state is shared with nobody beyond this host",
                metadata: ["socket": "\(server.socketPath)"])
        }

        let health = StoreHealth(logger: logger)
        let client = RedisClient(
            configuration: .init(endpoint: endpoint, deadlineMs: storeDeadlineMs, onStateChange: health.observer))
        let store = BreakerStore(
            client: client, configuration: StoreConfiguration(keyPrefix: keyPrefix, defaultPolicy: policy), logger: logger)
        do {
            try await RedisSettingsCheck.check(store, mode: eviction, logger: logger)
        } catch {
            logger.critical("refusing to start", metadata: ["reason": "\(error)"])
            client.shutdown()
            embedded?.stop()
            throw ExitCode.failure
        }
        // One registry per process, passed down: the global MetricsSystem is not bootstrapped.
        let metrics = BreakerMetrics()
        let server = BreakerServer(
            configuration: ServerConfiguration(
                host: address.host, port: address.port,
                password: password ?? Self.env("BREAKERD_PASSWORD"),
                adminPassword: adminPassword ?? Self.env("BREAKERD_ADMIN_PASSWORD"),
                maxClients: maxClients, degradedPolicy: degradedPolicy, consistency: consistencyMode,
                requestTimeoutMs: requestTimeoutMs, idleTimeoutSeconds: timeout, maxClientsPerPeer: maxClientsPerPeer,
                adminReservedClients: adminReserved),
            store: store, health: health, logger: logger, observer: metrics)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        if let httpAddress {
            let httpServer = BreakerHTTPServer(
                configuration: httpConfiguration,
                server: server, metrics: metrics, logger: logger)
            services.append(.init(service: httpServer))
        }

        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("stopped by an error", metadata: ["error": "\(error)"])
            client.shutdown()
            embedded?.stop()
            throw ExitCode.failure
        }
        client.shutdown()
        embedded?.stop()
        logger.notice("bye")
    }

    static func env(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }
}

private func env(_ name: String) -> String? { Breakerd.env(name) }
