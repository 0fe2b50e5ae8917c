import BreakerStore
import Hiredis
import Logging
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle
import Synchronization

/// breakerd's TCP server: speaks RESP to replicas and operators and answers from the store.
///
/// A swift-service-lifecycle `Service`: `run()` serves until graceful shutdown, then stops accepting,
/// lets every connection finish the requests it already sent, and returns. Tests may instead call
/// `start()` and `shutdown()` themselves.
public final class BreakerServer: Service, Sendable {
    public let configuration: ServerConfiguration
    public let store: BreakerStore
    public let health: StoreHealth
    private let logger: Logger
    private let group: any EventLoopGroup
    private let stats = ServerStats()
    private let fanout: EventFanout
    /// The one Redis subscription of this process, on `<prefix>:events`, on an event loop.
    private let subscriber: RedisSubscriber
    private let dispatcher: CommandDispatcher
    private let serverChannel = Mutex<(any Channel)?>(nil)
    private let connections = ConnectionRegistry()
    private let refresher = Mutex<Task<Void, Never>?>(nil)
    private let flusher = Mutex<Task<Void, Never>?>(nil)
    private let trimmer = Mutex<Task<Void, Never>?>(nil)

    /// `health` should also be the store's Redis client `onStateChange` observer, so INFO and the
    /// log follow connection losses as well as failed calls.
    public init(
        configuration: ServerConfiguration,
        store: BreakerStore,
        health: StoreHealth? = nil,
        logger: Logger = Logger(label: "breakerd"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        observer: (any BreakerServerObserver)? = nil
    ) {
        self.configuration = configuration
        self.store = store
        self.health = health ?? StoreHealth(logger: logger)
        self.logger = logger
        self.group = eventLoopGroup
        // The fan-out and the subscriber refer to each other; a box breaks the knot at init.
        let box = FanoutBox()
        let batched: BatchedBreakers?
        if case .batched(let flushMs) = configuration.consistency {
            batched = BatchedBreakers(flushMs: flushMs)
        } else {
            batched = nil
        }
        let known = KnownBreakers(capacity: configuration.maxLocalBreakers)
        let subscriber = RedisSubscriber(
            configuration: .init(
                endpoint: store.client.configuration.endpoint, channels: [store.configuration.eventsChannel],
                eventLoopGroup: eventLoopGroup),
            onMessage: { _, payload in
                let event = String(decoding: payload, as: UTF8.self)
                // Batched mode forgets what it knew of the breaker before any client can see the
                // event, so nobody who saw a RESET is then denied from stale knowledge.
                if let batched, let space = event.firstIndex(of: " ") { batched.forget(String(event[..<space])) }
                // Degraded answers keep what operators decided through any breakerd.
                known.learn(event: event)
                box.fanout?.publish(event)
            },
            onLiveChange: { live, detail in
                if live {
                    logger.info("event subscription live", metadata: ["detail": "\(detail)"])
                } else {
                    logger.warning("event subscription lost", metadata: ["detail": "\(detail)"])
                }
            })
        self.subscriber = subscriber
        let fanout = EventFanout(startSource: { subscriber.start() }, sourceIsLive: { subscriber.isLive })
        box.set(fanout)
        self.fanout = fanout
        self.dispatcher = CommandDispatcher(
            store: store, configuration: configuration, health: self.health, stats: stats, fanout: fanout,
            batched: batched, known: known, observer: observer ?? NoObserver(), logger: logger)
    }

    /// Client connections open now (the RESP port's, not HTTP's).
    public var openConnections: Int { stats.connectedClients.load(ordering: .relaxed) }

    /// Connections refused since start because `maxClients` were open.
    public var rejectedConnections: Int { stats.rejectedConnections.load(ordering: .relaxed) }

    /// Calls `deliver` with every breaker event line of the fleet (the `breakers` channel), from the
    /// process's one Redis subscription; returns an id for `stopListening`. `deliver` runs on the
    /// subscription's event loop and must not block.
    public func listenToEvents(_ deliver: @escaping @Sendable (String) -> Void) async -> Int {
        let id = stats.nextListenerID()
        fanout.update(connection: id, channels: ["breakers"]) { _, payload in deliver(payload) }
        await fanout.waitUntilLive()
        return id
    }

    public func stopListening(_ id: Int) {
        fanout.remove(connection: id)
    }

    /// The port the server listens on (the kernel's choice when configured with 0); 0 before `start()`.
    public var port: Int { stats.port.load(ordering: .relaxed) }

    /// Binds and starts accepting; returns once the port is open.
    public func start() async throws {
        // Load the store's function library now, so that a Redis older than 7.0 (or one that refuses
        // FUNCTION LOAD) stops breakerd here with the store's message. An unreachable Redis is not
        // fatal: breakerd starts degraded and the store loads the library on its first call.
        do {
            try await store.loadLibrary()
        } catch where error.code != .unavailable {
            throw error
        } catch {}
        let stats = self.stats
        let configuration = self.configuration
        let logger = self.logger
        let dispatcher = self.dispatcher
        let connections = self.connections
        let authenticator = Authenticator(password: configuration.password, adminPassword: configuration.adminPassword)
        let limits = ConnectionLimits(configuration)

        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let peer = Self.describe(channel.remoteAddress)
                let host = channel.remoteAddress?.ipAddress ?? peer
                let count = stats.connectedClients.add(1, ordering: .relaxed).newValue
                // Past maxClients, a few slots stay for an admin (who must AUTH in time); past
                // those, Redis's own refusal.
                let reserve = configuration.adminPassword == nil ? 0 : configuration.adminReservedClients
                if count > configuration.maxClients + reserve {
                    stats.connectedClients.subtract(1, ordering: .relaxed)
                    stats.rejectedConnections.add(1, ordering: .relaxed)
                    logger.warning("refused a connection: max number of clients reached", metadata: ["peer": "\(peer)", "max": "\(configuration.maxClients)"])
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RejectionHandler(message: "ERR max number of clients reached"))
                    }
                }
                let limitPeer = configuration.maxClientsPerPeer > 0
                if limitPeer && !stats.admitPeer(host, limit: configuration.maxClientsPerPeer) {
                    stats.connectedClients.subtract(1, ordering: .relaxed)
                    stats.rejectedPerPeer.add(1, ordering: .relaxed)
                    logger.warning(
                        "refused a connection: max number of clients per peer address reached",
                        metadata: ["peer": "\(peer)", "max_per_peer": "\(configuration.maxClientsPerPeer)"])
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            RejectionHandler(message: "ERR max number of clients per peer address reached"))
                    }
                }
                let reserved = count > configuration.maxClients
                if reserved { stats.reserveAdmitted.add(1, ordering: .relaxed) }
                let id = stats.nextConnectionID()
                connections.add(id, channel)
                channel.closeFuture.whenComplete { _ in
                    stats.connectedClients.subtract(1, ordering: .relaxed)
                    if limitPeer { stats.releasePeer(host) }
                    connections.remove(id)
                }
                let session = ConnectionSession(id: id, peer: peer, role: authenticator.initialRole)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionHandler(runner: dispatcher, session: session, limits: limits, reserved: reserved, logger: logger))
                }
            }

        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        serverChannel.withLock { $0 = channel }
        stats.port.store(channel.localAddress?.port ?? configuration.port, ordering: .relaxed)
        logger.notice(
            "listening",
            metadata: [
                "address": "\(configuration.host):\(port)", "key_prefix": "\(store.configuration.keyPrefix)",
                "degraded": "\(configuration.degradedPolicy.rawValue)",
            ])
        if !Self.isLoopback(configuration.host) && !configuration.hasSecrets {
            logger.warning(
                "listening on a non-loopback address without secrets: anyone who can reach it may force or reset breakers",
                metadata: ["address": "\(configuration.host)"])
        }
        startRefreshingDefaults()
        startReturningMemory()
        await startFlushing()
    }

    /// Every few seconds, when connections have closed since the last look, freed memory goes back
    /// to the kernel (see MemoryReturner): resident memory falls back after a burst of clients.
    private func startReturningMemory() {
        let stats = self.stats
        let task = Task {
            var lastTotal = stats.totalConnections.load(ordering: .relaxed)
            var lastOpen = stats.connectedClients.load(ordering: .relaxed)
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                let total = stats.totalConnections.load(ordering: .relaxed)
                let open = stats.connectedClients.load(ordering: .relaxed)
                // Closed since the last look: opened minus the growth of what is open now.
                if (total - lastTotal) - (open - lastOpen) > 0 { MemoryReturner.trim() }
                lastTotal = total
                lastOpen = open
            }
        }
        trimmer.withLock { $0 = task }
    }

    /// Batched mode: events about a breaker forget what this process knew of it, and every flush
    /// interval the outcomes gathered are folded into Redis.
    private func startFlushing() async {
        guard let batched = dispatcher.batched else { return }
        await fanout.waitUntilLive()
        let subscriber = self.subscriber
        let dispatcher = self.dispatcher
        batched.setEventsLive(subscriber.isLive)
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(batched.flushMs))
                batched.setEventsLive(subscriber.isLive)
                await dispatcher.flushBatched()
            }
        }
        flusher.withLock { $0 = task }
        logger.notice("batched mode", metadata: ["flush_ms": "\(batched.flushMs)", "permit_token": "\(batched.token)"])
    }

    /// Stops accepting, lets every connection answer what it already sent (up to `grace`), closes
    /// the rest, and stops the event subscription. The store's Redis client is the caller's to close.
    public func shutdown(grace: Duration = .seconds(5)) async {
        let channel = serverChannel.withLock { c -> (any Channel)? in
            defer { c = nil }
            return c
        }
        try? await channel?.close()
        refresher.withLock { $0?.cancel() }
        trimmer.withLock { $0?.cancel() }
        for c in connections.all {
            c.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: grace)
        while clock.now < deadline && !connections.isEmpty {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for c in connections.all { try? await c.close() }
        // Outcomes gathered in batched mode reach Redis before the process goes.
        flusher.withLock { $0?.cancel() }
        await dispatcher.flushBatched()
        subscriber.shutdown()
        logger.notice("stopped listening")
    }

    public func run() async throws {
        try await start()
        // Returns on graceful shutdown (SIGTERM/SIGINT through the ServiceGroup), throws on cancellation.
        try? await gracefulShutdown()
        await shutdown()
    }

    private func startRefreshingDefaults() {
        let store = self.store
        let interval = max(50, store.configuration.defaultsRefreshMs)
        let task = Task {
            while !Task.isCancelled {
                try? await store.refreshDefaults()
                try? await Task.sleep(for: .milliseconds(interval))
            }
        }
        refresher.withLock { $0 = task }
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        if let ip = address.ipAddress, let port = address.port {
            return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
        return address.pathname ?? "\(address)"
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }
}

/// Lets the fan-out's publish closure be made before the fan-out exists.
private final class FanoutBox: Sendable {
    private let value = Mutex<EventFanout?>(nil)
    var fanout: EventFanout? { value.withLock { $0 } }
    func set(_ f: EventFanout) { value.withLock { $0 = f } }
}
