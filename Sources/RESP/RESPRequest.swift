import NIOCore

/// One client command: its name and arguments, exactly the bytes the client sent.
public struct RESPRequest: Sendable, Equatable {
    /// The command name followed by its arguments; never empty when produced by `RESPRequestDecoder`.
    public var arguments: [ByteBuffer]
    /// Whether the command came as a typed line (nc, telnet) rather than a multibulk frame.
    public var isInline: Bool

    /// Creates a request from its arguments.
    public init(arguments: [ByteBuffer], isInline: Bool = false) {
        self.arguments = arguments
        self.isInline = isInline
    }

    /// The first argument uppercased, for case-insensitive dispatch; empty when there are no arguments.
    public var name: String {
        guard let first = self.arguments.first else { return "" }
        return String(decoding: first.readableBytesView, as: UTF8.self).uppercased()
    }

    /// The argument at `index` decoded as UTF-8 (invalid bytes become U+FFFD), or nil when out of range.
    public func string(at index: Int) -> String? {
        guard self.arguments.indices.contains(index) else { return nil }
        return String(decoding: self.arguments[index].readableBytesView, as: UTF8.self)
    }
}
