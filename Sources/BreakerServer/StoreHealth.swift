import Logging
import Synchronization

/// Whether the store (Redis) is answering, as last seen by the Redis client or by a store call,
/// logged once per change so an outage reads as one "down" and one "up" line.
public final class StoreHealth: Sendable {
    /// nil until the first observation, so the first one is logged either way.
    private let state = Mutex<(up: Bool?, detail: String)>((nil, "not yet used"))
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// True unless the store was last seen failing (before any call it is presumed up).
    public var isUp: Bool { state.withLock { $0.up ?? true } }

    public var detail: String { state.withLock { $0.detail } }

    /// Records what was seen; logs only when it changes up or down.
    public func record(up: Bool, detail: String) {
        let changed = state.withLock { s -> Bool in
            let changed = s.up != up
            s = (up, detail)
            return changed
        }
        guard changed else { return }
        if up {
            logger.notice("store up", metadata: ["detail": "\(detail)"])
        } else {
            logger.warning("store down", metadata: ["detail": "\(detail)"])
        }
    }

    /// A `RedisClient.Configuration.onStateChange` that feeds this health record.
    public var observer: @Sendable (Bool, String) -> Void {
        { [self] up, detail in self.record(up: up, detail: detail) }
    }
}
