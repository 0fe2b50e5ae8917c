import Foundation
import Hiredis
import Logging
import Synchronization

/// The one Redis subscription of this process, on `<prefix>:events`, read by a thread of its own
/// (hiredis blocks) and handed to an `EventFanout`.
///
/// hiredis 0.14 has no way to wait for a message without a read timeout, and a timed-out context is
/// dead, so the thread never waits idle in a read: it sends PING, reads everything up to the pong
/// (the messages that arrived meanwhile come first, in order), sleeps `pollMs`, and goes again.
/// Messages therefore reach clients within about `pollMs`, and a Redis that stops answering is
/// noticed within the read timeout; after an error the thread reconnects with backoff and
/// subscribes again (events published while it was disconnected are lost, as with Redis pub/sub).
final class RedisEventSubscriber: Sendable {
    private let endpoint: RedisEndpoint
    private let channel: String
    private let pollMs: Int
    private let fanout: @Sendable (String) -> Void
    private let logger: Logger
    private let started = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let live = Atomic<Bool>(false)

    /// True while Redis has confirmed the subscription and the connection has not failed since.
    var isLive: Bool { live.load(ordering: .relaxed) }

    init(endpoint: RedisEndpoint, channel: String, pollMs: Int = 20, logger: Logger, fanout: @escaping @Sendable (String) -> Void) {
        self.endpoint = endpoint
        self.channel = channel
        self.pollMs = max(1, pollMs)
        self.logger = logger
        self.fanout = fanout
    }

    /// Starts the thread once; later calls do nothing.
    func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in self.run() }
        thread.name = "redis-events"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Asks the thread to stop; it does within one poll interval (or one read timeout).
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    private func run() {
        var backoffMs = 0
        while !stopped.load(ordering: .relaxed) {
            do throws(RedisError) {
                let connection = try RedisConnection(
                    endpoint: endpoint, options: .init(connectTimeoutMs: 1000, commandTimeoutMs: 2000))
                defer { connection.close() }
                try connection.write(["SUBSCRIBE", channel])
                _ = try connection.readReply()
                live.store(true, ordering: .relaxed)
                if backoffMs > 0 { logger.info("event subscription restored", metadata: ["channel": "\(channel)"]) }
                backoffMs = 0
                while !stopped.load(ordering: .relaxed) {
                    try connection.write(["PING"])
                    while true {
                        let reply = try connection.readReply()
                        guard let e = reply.elements, let kind = e.first?.text else { continue }
                        if kind == "pong" { break }
                        if kind == "message", e.count == 3, let payload = e[2].text { fanout(payload) }
                    }
                    usleep(UInt32(pollMs * 1000))
                }
            } catch {
                live.store(false, ordering: .relaxed)
                if stopped.load(ordering: .relaxed) { return }
                if backoffMs == 0 {
                    logger.warning("event subscription lost", metadata: ["error": "\(error)"])
                }
                backoffMs = backoffMs == 0 ? 50 : min(backoffMs * 2, 2000)
                var waited = 0
                while waited < backoffMs && !stopped.load(ordering: .relaxed) {
                    usleep(10_000)
                    waited += 10
                }
            }
        }
    }
}
