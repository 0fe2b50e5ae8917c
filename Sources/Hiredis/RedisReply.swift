/// A Redis reply, copied out of hiredis's memory the moment it arrives.
public enum RedisReply: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int64)
    case string([UInt8])
    case array([RedisReply])
    case null
}

extension RedisReply {
    /// The reply as text: a status, a bulk string (lossy UTF-8) or an integer; nil for anything else.
    public var text: String? {
        switch self {
        case .status(let s): return s
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    /// The reply as an integer: an integer, or a string that parses as one.
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .string, .status: return text.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply; nil for anything else.
    public var elements: [RedisReply]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The error text of an error reply; nil for anything else.
    public var errorMessage: String? {
        if case .error(let e) = self { return e }
        return nil
    }
}
