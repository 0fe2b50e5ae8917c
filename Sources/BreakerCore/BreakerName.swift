/// A breaker's name: 1 to 128 bytes of letters, digits and `._:/-`.
public struct BreakerName: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public static let maxLength = 128

    public init(_ text: String) throws(BreakerNameError) {
        let bytes = text.utf8
        guard !bytes.isEmpty else { throw BreakerNameError(name: text, reason: "is empty") }
        guard bytes.count <= Self.maxLength else {
            throw BreakerNameError(name: String(text.prefix(32)) + "...", reason: "is longer than \(Self.maxLength) bytes")
        }
        for b in bytes where !Self.allowed(b) {
            throw BreakerNameError(name: text, reason: "may hold only letters, digits and . _ : / -")
        }
        value = text
    }

    public var description: String { value }

    private static func allowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// A name that is not a valid breaker name.
public struct BreakerNameError: Error, Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var reason: String
    public var description: String { "invalid breaker name '\(name)': it \(reason)" }
}
