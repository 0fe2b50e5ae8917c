/// A peer sent bytes that are not valid RESP; the connection cannot be trusted to resynchronise and should close.
public struct RESPProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    // A private enum behind a struct lets new kinds be added without breaking anyone's exhaustive switch.
    private enum Kind: Sendable, Hashable {
        case tooBigInlineRequest
        case unbalancedQuotes
        case tooManyArguments
        case tooBigMultibulkCountString
        case tooBigBulkCountString
        case invalidMultibulkLength
        case invalidBulkLength
        case expectedDollar(UInt8)
        case bulkNotTerminated
        case unknownReplyType(UInt8)
        case invalidReplyLength
        case invalidReplyValue
        case replyTooDeep
        case replyTooBig
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// The text Redis would send after `-ERR ` for the same mistake.
    public var message: String {
        switch self.kind {
        case .tooBigInlineRequest:
            return "Protocol error: too big inline request"
        case .unbalancedQuotes:
            return "Protocol error: unbalanced quotes in request"
        case .tooManyArguments:
            return "Protocol error: too many arguments in inline request"
        case .tooBigMultibulkCountString:
            return "Protocol error: too big mbulk count string"
        case .tooBigBulkCountString:
            return "Protocol error: too big bulk count string"
        case .invalidMultibulkLength:
            return "Protocol error: invalid multibulk length"
        case .invalidBulkLength:
            return "Protocol error: invalid bulk length"
        case .expectedDollar(let byte):
            return "Protocol error: expected '$', got '\(Self.printable(byte))'"
        case .bulkNotTerminated:
            return "Protocol error: bulk data not terminated by CRLF"
        case .unknownReplyType(let byte):
            return "Protocol error: unknown reply type '\(Self.printable(byte))'"
        case .invalidReplyLength:
            return "Protocol error: invalid length in reply"
        case .invalidReplyValue:
            return "Protocol error: invalid value in reply"
        case .replyTooDeep:
            return "Protocol error: reply nested too deeply"
        case .replyTooBig:
            return "Protocol error: reply exceeds the size limits"
        }
    }

    /// The same as `message`.
    public var description: String {
        self.message
    }

    // Redis echoes the raw byte; a control byte would garble the one-line error reply, so it is escaped instead.
    private static func printable(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F {
            return String(UnicodeScalar(byte))
        }
        let hex = String(byte, radix: 16, uppercase: false)
        return byte < 0x10 ? "\\x0\(hex)" : "\\x\(hex)"
    }
}

extension RESPProtocolError {
    /// An inline line, or bytes without a newline, longer than `RESPLimits.maxInlineBytes`.
    public static let tooBigInlineRequest = Self(.tooBigInlineRequest)
    /// An inline line with a quote that is never closed, or closed and not followed by a space.
    public static let unbalancedQuotes = Self(.unbalancedQuotes)
    /// An inline line with more words than `RESPLimits.maxArguments`.
    public static let tooManyArguments = Self(.tooManyArguments)
    /// A `*` header line longer than `RESPLimits.maxInlineBytes` without a CR.
    public static let tooBigMultibulkCountString = Self(.tooBigMultibulkCountString)
    /// A `$` header line longer than `RESPLimits.maxInlineBytes` without a CR.
    public static let tooBigBulkCountString = Self(.tooBigBulkCountString)
    /// A `*` count that is not a number or exceeds `RESPLimits.maxArguments`.
    public static let invalidMultibulkLength = Self(.invalidMultibulkLength)
    /// A `$` length that is not a number, is negative or exceeds `RESPLimits.maxBulkBytes`.
    public static let invalidBulkLength = Self(.invalidBulkLength)
    /// A multibulk element that does not start with `$`.
    public static func expectedDollar(got byte: UInt8) -> Self { Self(.expectedDollar(byte)) }
    /// Bulk bytes not followed by CRLF.
    public static let bulkNotTerminated = Self(.bulkNotTerminated)
    /// A reply starting with a byte that is no RESP2 or RESP3 type.
    public static func unknownReplyType(_ byte: UInt8) -> Self { Self(.unknownReplyType(byte)) }
    /// A reply length or count that is not a number or is negative where that means nothing.
    public static let invalidReplyLength = Self(.invalidReplyLength)
    /// A reply integer, double, boolean, null or verbatim string that is malformed.
    public static let invalidReplyValue = Self(.invalidReplyValue)
    /// A reply nested deeper than the decoder's `maxDepth`.
    public static let replyTooDeep = Self(.replyTooDeep)
    /// A reply line, string or aggregate larger than the decoder's limits.
    public static let replyTooBig = Self(.replyTooBig)
}
