/// Caps on what one client request may make the server buffer and allocate.
public struct RESPLimits: Sendable, Hashable {
    /// The longest inline line, and the longest header line before its CR (Redis's PROTO_INLINE_MAX_SIZE).
    public var maxInlineBytes: Int
    /// The most arguments one request may carry, inline or multibulk.
    public var maxArguments: Int
    /// The longest single bulk argument of a multibulk request.
    public var maxBulkBytes: Int

    /// Creates limits; the defaults suit a circuit-breaker server, whose arguments are short names and numbers.
    public init(
        maxInlineBytes: Int = 64 * 1024, maxArguments: Int = 1024, maxBulkBytes: Int = 512 * 1024
    ) {
        self.maxInlineBytes = maxInlineBytes
        self.maxArguments = maxArguments
        self.maxBulkBytes = maxBulkBytes
    }
}
