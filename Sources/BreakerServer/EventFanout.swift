import Synchronization

/// Hands each breaker event to the connections subscribed to it: `breakers` gets every event,
/// `breaker:<name>` one breaker's. Events come from one Redis subscription per process
/// (`RedisEventSubscriber`), so a thousand subscribed clients cost Redis one connection.
final class EventFanout: Sendable {
    /// Delivers one message (channel as the client spelled it, event line) to a connection.
    typealias Deliver = @Sendable (_ channel: String, _ payload: String) -> Void

    private struct Subscriber {
        var channels: Set<String>
        let deliver: Deliver
    }

    private let subscribers = Mutex<[Int: Subscriber]>([:])
    private let startSource: @Sendable () -> Void
    private let sourceIsLive: @Sendable () -> Bool

    /// `startSource` starts the Redis subscription (the first time anyone subscribes);
    /// `sourceIsLive` tells whether Redis has confirmed it.
    init(startSource: @escaping @Sendable () -> Void, sourceIsLive: @escaping @Sendable () -> Bool) {
        self.startSource = startSource
        self.sourceIsLive = sourceIsLive
    }

    /// Starts the Redis subscription and waits (up to `timeout`) until Redis has confirmed it, so
    /// a client told "subscribed" sees the events that its next command causes.
    func waitUntilLive(timeout: Duration = .seconds(1)) async {
        startSource()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while !sourceIsLive() && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The channel names clients may subscribe to.
    static func isValidChannel(_ channel: String) -> Bool {
        channel == "breakers" || (channel.hasPrefix("breaker:") && channel.count > "breaker:".count)
    }

    /// Sets the channels of connection `id` (empty removes it).
    func update(connection id: Int, channels: [String], deliver: @escaping Deliver) {
        subscribers.withLock { s in
            if channels.isEmpty {
                s.removeValue(forKey: id)
            } else {
                s[id] = Subscriber(channels: Set(channels), deliver: deliver)
            }
        }
        if !channels.isEmpty { startSource() }
    }

    func remove(connection id: Int) {
        _ = subscribers.withLock { $0.removeValue(forKey: id) }
    }

    /// Sends an event line (`<breaker> <from>-><to> ...`) to everyone subscribed to it.
    func publish(_ event: String) {
        let name = event.prefix { $0 != " " }
        let own = "breaker:" + name
        let targets = subscribers.withLock { s in
            s.values.compactMap { sub -> (Deliver, [String])? in
                var hits: [String] = []
                if sub.channels.contains("breakers") { hits.append("breakers") }
                if sub.channels.contains(own) { hits.append(own) }
                return hits.isEmpty ? nil : (sub.deliver, hits)
            }
        }
        for (deliver, channels) in targets {
            for channel in channels { deliver(channel, event) }
        }
    }

    var subscriberCount: Int { subscribers.withLock { $0.count } }
}
