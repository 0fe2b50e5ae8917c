import BreakerServer
import BreakerStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// breakerd's HTTP endpoint for operators: `/metrics` (Prometheus), `/api/breakers` (JSON),
/// `/healthz`, `/` (the status page) and `/events` (Server-Sent Events for the page). Read-only:
/// GET and HEAD only.
///
/// A swift-service-lifecycle `Service` like `BreakerServer`: `run()` serves until graceful shutdown.
/// Tests may call `start()` and `shutdown()` themselves.
public final class BreakerHTTPServer: Service, Sendable {
    public let configuration: HTTPConfiguration
    public let metrics: BreakerMetrics
    private let routes: HTTPRoutes
    private let streams: EventStreams
    private let samples: BreakerSamples
    private let logger: Logger
    private let group: any EventLoopGroup
    private let serverChannel = Mutex<(any Channel)?>(nil)
    private let connections = HTTPConnections()
    private let boundPort = Atomic<Int>(0)

    /// `metrics` should be the `observer` the breaker server was made with, so /metrics counts its work.
    public init(
        configuration: HTTPConfiguration,
        server: BreakerServer,
        metrics: BreakerMetrics,
        logger: Logger = Logger(label: "breakerd.http"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.group = eventLoopGroup
        let streams = EventStreams(server: server, limit: configuration.maxEventStreams)
        self.streams = streams
        let reader = FleetReader(
            store: server.store, health: server.health, metrics: metrics, maxBreakers: configuration.maxBreakers)
        let samples = BreakerSamples(
            reader: reader, interval: configuration.sampleInterval, count: configuration.sampleCount, logger: logger)
        self.samples = samples
        self.routes = HTTPRoutes(
            server: server, metrics: metrics, streams: streams,
            reader: reader,
            historyCount: configuration.historyCount, access: HTTPAccess(configuration), samples: samples,
            refusals: RefusalLog(logger: logger))
    }

    /// The port listened on (the kernel's choice when configured with 0); 0 before `start()`.
    public var port: Int { boundPort.load(ordering: .relaxed) }

    /// HTTP connections open now.
    public var openConnections: Int { connections.count }

    /// Binds and starts accepting; returns once the port is open. Throws `HTTPConfigurationError`
    /// for a configuration that must not be served (beyond loopback without a token).
    public func start() async throws {
        if let problem = configuration.problem() { throw HTTPConfigurationError(problem) }
        let configuration = self.configuration
        let routes = self.routes
        let streams = self.streams
        let logger = self.logger
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 128)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = connections.add(channel, limit: configuration.maxConnections)
                guard let id else {
                    logger.warning("refused an HTTP connection: too many open", metadata: ["max": "\(configuration.maxConnections)"])
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTPRejectionHandler())
                    }
                }
                channel.closeFuture.whenComplete { _ in connections.remove(id) }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: TimeAmount(configuration.idleTimeout)))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(
                        HTTPHandler(routes: routes, streams: streams, heartbeat: TimeAmount(configuration.heartbeat)))
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        serverChannel.withLock { $0 = channel }
        boundPort.store(channel.localAddress?.port ?? configuration.port, ordering: .relaxed)
        samples.start()
        let metricsAccess =
            configuration.metricsPublic
            ? "public" : configuration.metricsToken != nil ? "own token" : configuration.token != nil ? "locked" : "open"
        logger.notice(
            "http listening",
            metadata: [
                "address": "\(configuration.host):\(port)", "locked": "\(configuration.token != nil)",
                "metrics": "\(metricsAccess)",
            ])
    }

    /// Stops accepting and closes every HTTP connection (requests are short; event streams reconnect
    /// elsewhere).
    public func shutdown() async {
        let channel = serverChannel.withLock { c -> (any Channel)? in
            defer { c = nil }
            return c
        }
        try? await channel?.close()
        streams.stop()
        await samples.stop()
        for c in connections.all { try? await c.close() }
        logger.notice("http stopped")
    }

    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }
}

/// A configuration `BreakerHTTPServer` refuses to serve, with the reason.
public struct HTTPConfigurationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (s, atto) = duration.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}

/// Answers 503 to a connection over the limit, then closes it.
private final class HTTPRejectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
        let buffer = context.channel.allocator.buffer(string: text)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// The open HTTP connections, so the limit can be kept and shutdown can close them.
private final class HTTPConnections: Sendable {
    private let state = Mutex<(next: Int, all: [Int: any Channel])>((0, [:]))

    /// Adds `channel` and returns its id; nil when `limit` are open already.
    func add(_ channel: any Channel, limit: Int) -> Int? {
        state.withLock { c -> Int? in
            guard c.all.count < limit else { return nil }
            c.next += 1
            c.all[c.next] = channel
            return c.next
        }
    }

    func remove(_ id: Int) { _ = state.withLock { $0.all.removeValue(forKey: id) } }

    var all: [any Channel] { state.withLock { Array($0.all.values) } }

    var count: Int { state.withLock { $0.all.count } }
}
