import Hiredis

/// Why the store could not answer.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// Redis could not be reached or did not answer before the deadline.
        case unavailable
        /// The permit was never issued by this breaker.
        case unknownPermit
        /// A policy key or value was refused.
        case invalidPolicy
        /// An argument was refused (a mode, a count, an outcome).
        case invalidArgument
        /// Redis answered with an error the store did not expect.
        case redis
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    init(_ error: RedisError) {
        self.init(.unavailable, error.description)
    }

    /// Redis answered `what` with an error. Errors that mean "not now" — still loading its data
    /// set, busy with a script, a replica read-only after a failover, a cluster or master down —
    /// make the store unavailable (ACQUIRE answers degraded, and says so) rather than an error.
    static func refused(_ what: String, _ message: String) -> StoreError {
        let code = message.prefix { $0 != " " }
        let transient: Set<Substring> = ["LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN"]
        return StoreError(transient.contains(code) ? .unavailable : .redis, "Redis refused \(what): \(message)")
    }
}
