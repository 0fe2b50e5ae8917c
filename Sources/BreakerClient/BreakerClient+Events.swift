import BreakerCore
import NIOCore
import RESP
import Synchronization

/// Hands every frame of a subscribed connection to a stream, and ends it when the connection closes.
final class SubscriberHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = RESPValue
    let continuation: AsyncStream<RESPValue>.Continuation

    init(continuation: AsyncStream<RESPValue>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}

/// How an event subscription stands.
public enum EventSubscriptionStatus: Sendable, Hashable {
    /// Subscribed through this address; events flow from now on.
    case live(BreakerAddress)
    /// The subscription was lost (events until it is live again are missed; HISTORY keeps them).
    case lost(reason: String)
}

extension BreakerClient {
    /// Breaker events as they happen: every breaker's (`breakers: []`), or those of the breakers named.
    ///
    /// A connection of its own subscribes to `breakers` or `breaker:<name>`; when it is lost the
    /// client subscribes again (through the next address that is up, with backoff), for as long as
    /// the sequence is iterated. Events that happened while no subscription was live are not
    /// replayed: `onStatus` says when that may have happened. Ending the iteration unsubscribes.
    public func events(
        _ breakers: [String] = [],
        onStatus: (@Sendable (EventSubscriptionStatus) -> Void)? = nil
    ) -> AsyncStream<BreakerEvent> {
        let channels = breakers.isEmpty ? ["breakers"] : breakers.map { "breaker:\($0)" }
        let (stream, continuation) = AsyncStream<BreakerEvent>.makeStream(
            bufferingPolicy: .bufferingNewest(10_000))
        let task = Task {
            await self.subscribeLoop(channels: channels, onStatus: onStatus) { continuation.yield($0) }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Keeps one subscription up until cancelled, handing each event to `deliver`.
    func subscribeLoop(
        channels: [String],
        onStatus: (@Sendable (EventSubscriptionStatus) -> Void)?,
        deliver: @escaping @Sendable (BreakerEvent) -> Void
    ) async {
        var failures = 0
        var start = 0
        while !Task.isCancelled {
            let address = configuration.addresses[start % configuration.addresses.count]
            do {
                try await subscribeOnce(
                    address: address, channels: channels, onStatus: onStatus, deliver: deliver
                ) {
                    failures = 0
                }
                if Task.isCancelled { break }
                onStatus?(.lost(reason: "connection to \(address) closed"))
            } catch {
                if Task.isCancelled { break }
                onStatus?(.lost(reason: "\(error)"))
                logger.debug(
                    "event subscription failed", metadata: ["address": "\(address)", "error": "\(error)"])
            }
            // Try the next address at once; back off once every address has failed in a row.
            failures += 1
            start += 1
            if failures >= configuration.addresses.count {
                var wait = configuration.reconnectBackoff
                for _ in 0..<min(failures / configuration.addresses.count, 10)
                where wait < configuration.maxReconnectBackoff {
                    wait = wait * 2
                }
                try? await Task.sleep(for: min(wait, configuration.maxReconnectBackoff))
            }
        }
    }

    private func subscribeOnce(
        address: BreakerAddress,
        channels: [String],
        onStatus: (@Sendable (EventSubscriptionStatus) -> Void)?,
        deliver: @escaping @Sendable (BreakerEvent) -> Void,
        onLive: () -> Void
    ) async throws {
        let (frames, continuation) = AsyncStream<RESPValue>.makeStream()
        let c = configuration
        let deadline = NIODeadline.now() + TimeAmount(c.requestTimeout)
        let connection = try await ClientConnection.connect(
            to: address, group: group, connectTimeout: c.connectTimeout, deadline: deadline, user: nil,
            password: nil,
            clientName: nil, handler: { SubscriberHandler(continuation: continuation) })
        let channel = connection.channel
        func send(_ args: [String]) {
            var buffer = channel.allocator.buffer(capacity: 64)
            RESPValue.array(args.map { .bulk($0) }).encode(into: &buffer, version: .resp2)
            channel.writeAndFlush(buffer, promise: nil)
        }
        if let password = c.password {
            send(c.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if let name = c.clientName { send(["CLIENT", "SETNAME", name]) }
        send(["SUBSCRIBE"] + channels)
        // A connection that answers nothing (setup, or PINGs later) within the time allowed is dead.
        let lastHeard = Atomic<Int64>(NIODeadline.now().uptimeNanoseconds.toInt64)
        let live = Atomic<Bool>(false)
        let keepAlive = Task {
            let setupLimit = Int64(TimeAmount(c.requestTimeout).nanoseconds)
            let idleLimit = Int64(TimeAmount(c.eventKeepAlive).nanoseconds) * 2
            while !Task.isCancelled {
                try? await Task.sleep(
                    for: live.load(ordering: .relaxed) ? c.eventKeepAlive : c.requestTimeout / 4)
                let now = NIODeadline.now().uptimeNanoseconds.toInt64
                let limit = live.load(ordering: .relaxed) ? idleLimit : setupLimit
                if now - lastHeard.load(ordering: .relaxed) > limit {
                    channel.close(promise: nil)
                    return
                }
                if live.load(ordering: .relaxed) { send(["PING"]) }
            }
        }
        defer {
            keepAlive.cancel()
            channel.close(promise: nil)
        }
        var confirmed = 0
        var setupReplies = (c.password != nil ? 1 : 0) + (c.clientName != nil ? 1 : 0)
        try await withTaskCancellationHandler {
            for await frame in frames {
                lastHeard.store(NIODeadline.now().uptimeNanoseconds.toInt64, ordering: .relaxed)
                if case .error(let text) = frame { throw BreakerClientError.refused(text) }
                if setupReplies > 0 {
                    setupReplies -= 1
                    continue
                }
                guard case .array(let parts) = frame, let kind = parts.first?.text else { continue }
                switch kind {
                case "subscribe":
                    confirmed += 1
                    if confirmed == channels.count {
                        live.store(true, ordering: .relaxed)
                        onLive()
                        onStatus?(.live(address))
                    }
                case "message" where parts.count == 3:
                    if let line = parts[2].text, let event = try? BreakerEvent(parsing: line) {
                        deliver(event)
                    }
                default:
                    break  // pong
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Starts, once, the subscription to `breakers` that keeps the open-state cache honest.
    func startWatchingEvents() {
        guard configuration.cachesOpenState,
            watcherStarted.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        else { return }
        let cache = openStates
        let epochs = Atomic<Int>(0)
        let task = Task {
            await self.subscribeLoop(channels: ["breakers"]) { status in
                switch status {
                case .live: cache.subscription(live: epochs.add(1, ordering: .relaxed).newValue)
                case .lost: cache.subscription(live: nil)
                }
            } deliver: { event in
                cache.forget(event.breaker)
            }
        }
        watcher.withLock { $0 = task }
    }
}

extension UInt64 {
    fileprivate var toInt64: Int64 { Int64(truncatingIfNeeded: self) }
}
