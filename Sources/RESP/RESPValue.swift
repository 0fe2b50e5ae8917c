import NIOCore

/// A reply in RESP3 terms; encoding for a RESP2 connection downgrades the types RESP2 lacks.
public enum RESPValue: Sendable {
    /// `+text`: a short status line such as `OK` or `PONG`.
    case simpleString(String)
    /// `-text`: an error, starting with its code, e.g. `ERR unknown command`.
    case error(String)
    /// `:n`.
    case integer(Int64)
    /// `$len`: binary-safe bytes.
    case bulkString(ByteBuffer)
    /// A missing value: `_` in RESP3, `$-1` in RESP2.
    case null
    /// `*n`: an ordered list of values.
    case array([RESPValue])
    /// A missing list: `_` in RESP3, `*-1` in RESP2.
    case nullArray
    /// `%n`: key-value pairs in order; a flat key, value, ... array in RESP2.
    case map([(RESPValue, RESPValue)])
    /// `~n`: an unordered collection; an array in RESP2.
    case set([RESPValue])
    /// `,d`: a floating-point number; a bulk string of its shortest text in RESP2.
    case double(Double)
    /// `#t` / `#f`; the integer 1 or 0 in RESP2.
    case boolean(Bool)
    /// `>n`: an out-of-band message such as a pub/sub event; an array in RESP2.
    case push([RESPValue])
    /// `=len`: text meant to be shown as is; sent with the `txt` format, a bulk string in RESP2.
    case verbatim(String)

    /// A bulk string holding the UTF-8 bytes of `string`.
    public static func bulk(_ string: String) -> RESPValue {
        .bulkString(ByteBuffer(string: string))
    }
}

extension RESPValue: Equatable {
    /// Structural equality; maps compare pair by pair in order, and NaN equals NaN so decoded replies round-trip.
    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        // Switching on lhs alone keeps the switch exhaustive, so a new case cannot be forgotten here.
        switch lhs {
        case .simpleString(let a):
            if case .simpleString(let b) = rhs { return a == b }
        case .error(let a):
            if case .error(let b) = rhs { return a == b }
        case .integer(let a):
            if case .integer(let b) = rhs { return a == b }
        case .bulkString(let a):
            if case .bulkString(let b) = rhs { return a == b }
        case .null:
            if case .null = rhs { return true }
        case .array(let a):
            if case .array(let b) = rhs { return a == b }
        case .nullArray:
            if case .nullArray = rhs { return true }
        case .map(let a):
            if case .map(let b) = rhs {
                return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            }
        case .set(let a):
            if case .set(let b) = rhs { return a == b }
        case .double(let a):
            if case .double(let b) = rhs { return a == b || (a.isNaN && b.isNaN) }
        case .boolean(let a):
            if case .boolean(let b) = rhs { return a == b }
        case .push(let a):
            if case .push(let b) = rhs { return a == b }
        case .verbatim(let a):
            if case .verbatim(let b) = rhs { return a == b }
        }
        return false
    }
}
