import BreakerStore
import Hiredis
import Logging

/// What breakerd does when Redis may evict its keys.
public enum EvictionCheck: String, Sendable, CaseIterable {
    /// Refuse to start.
    case refuse
    /// Start, with a warning in the log.
    case warn
}

/// Redis's own settings that breakerd's promises rest on, checked at start.
///
/// A breaker's state, permits and history are keys with an idle expiry, and its operator's mode a
/// key without one. Under any `maxmemory-policy` but `noeviction`, Redis may delete them when it
/// fills up: an open breaker would silently close, a forced mode vanish, a half-open trial lease be
/// forgotten. The `volatile-*` policies evict exactly the keys that have an expiry, which every
/// breaker key but the settings has, so they are refused too. As queue systems on Redis do, breakerd
/// refuses to start on such a Redis unless told to only warn.
public enum RedisSettingsCheck {
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks `maxmemory-policy`. A Redis that cannot be asked (down, or CONFIG renamed away, as
    /// managed services do) is logged and let through: the setting cannot be known.
    public static func check(_ store: BreakerStore, mode: EvictionCheck, logger: Logger) async throws(Refusal) {
        let reply: RedisReply
        do {
            reply = try await store.client.send(["CONFIG", "GET", "maxmemory-policy"])
        } catch {
            logger.warning("could not check Redis's maxmemory-policy", metadata: ["error": "\(error)"])
            return
        }
        guard let elements = reply.elements, elements.count == 2, let policy = elements[1].text else {
            logger.warning(
                "could not check Redis's maxmemory-policy", metadata: ["reply": "\(reply.errorMessage ?? "\(reply)")"])
            return
        }
        guard policy != "noeviction" else { return }
        let message =
            "Redis's maxmemory-policy is \(policy): Redis may evict breaker keys when it fills up (an open breaker would close, a forced mode vanish); set it to noeviction (CONFIG SET maxmemory-policy noeviction), or start with --eviction-check warn to run anyway"
        switch mode {
        case .refuse:
            throw Refusal(description: message)
        case .warn:
            logger.warning("Redis may evict breaker keys", metadata: ["maxmemory_policy": "\(policy)", "detail": "\(message)"])
        }
    }
}
