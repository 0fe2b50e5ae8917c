/// Why a Redis call did not produce a reply. A reply that is itself an error is a `RedisReply.error`,
/// not a `RedisError`: the connection is fine after one.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The connection could not be made.
        case connect
        /// Reading or writing the socket failed; hiredis 0.14 also reports its socket timeout this way.
        case io
        /// Redis did not answer before the call's deadline.
        case timeout
        /// Redis closed the connection.
        case eof
        /// Redis sent bytes hiredis could not parse.
        case `protocol`
        /// The client is not connected (it is between reconnect attempts) or was shut down.
        case unavailable
        /// Authentication or database selection was refused when connecting.
        case handshake
        case other
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "redis \(kind): \(message)" }
}
