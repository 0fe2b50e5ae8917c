/// Why the private redis-server could not be started.
public struct EmbeddedRedisError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
