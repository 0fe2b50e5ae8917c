import NIOCore

/// Frames server bytes into replies of every RESP2 and RESP3 type, with nesting and sizes capped.
///
/// A reply is first measured without building anything, so a partial reply costs no allocations, and the
/// reader index moves only once the whole reply is there. Attributes (`|`) are read and dropped. Big numbers
/// (`(`) arrive as bulk strings of their digits; a verbatim string keeps its text and drops its format.
/// Streamed RESP3 aggregates (`*?`), which Redis never sends, are rejected.
public struct RESPReplyDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    /// Decoded replies.
    public typealias InboundOut = RESPValue

    /// The deepest nesting of aggregates accepted; a flat array is depth 1.
    public let maxDepth: Int
    /// The longest bulk, blob error or verbatim string accepted.
    public let maxBulkBytes: Int
    /// The most elements (or pairs) one aggregate may announce.
    public let maxElements: Int
    /// The longest line (`+`, `-`, `:`, headers...) accepted before its CR arrives.
    public let maxLineBytes: Int

    /// Creates a decoder; the defaults are generous for breakerd's and Redis's usual replies.
    public init(
        maxDepth: Int = 64,
        maxBulkBytes: Int = 64 * 1024 * 1024,
        maxElements: Int = 1024 * 1024,
        maxLineBytes: Int = 64 * 1024
    ) {
        self.maxDepth = maxDepth
        self.maxBulkBytes = maxBulkBytes
        self.maxElements = maxElements
        self.maxLineBytes = maxLineBytes
    }

    /// Returns the next whole reply, or nil until it has arrived.
    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        guard let end = try self.parse(buffer, at: 0, depth: 0, build: false)?.end else { return nil }
        guard let (value, _) = try self.parse(buffer, at: 0, depth: 0, build: true) else {
            preconditionFailure("a measured reply must parse")
        }
        buffer.moveReaderIndex(forwardBy: end)
        return value
    }

    /// Returns the replies still whole at EOF; a partial reply after them is dropped.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        if let value = try self.decode(buffer: &buffer) {
            return value
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return nil
    }

    /// Parses the value at `start`, returning it (a placeholder unless `build`) and the offset after it.
    private func parse(
        _ buffer: ByteBuffer,
        at start: Int,
        depth: Int,
        build: Bool
    ) throws -> (value: RESPValue, end: Int)? {
        var position = start
        // Attributes precede the value they describe; a loop, not recursion, so a chain of them cannot overflow the stack.
        while true {
            guard let (type, line) = try self.line(buffer, at: position) else { return nil }
            let next = line.upperBound + 2
            switch type {
            case UInt8(ascii: "+"):
                return (build ? .simpleString(buffer.respString(line)) : .null, next)
            case UInt8(ascii: "-"):
                return (build ? .error(buffer.respString(line)) : .null, next)
            case UInt8(ascii: ":"):
                guard let value = buffer.respInteger(line, strict: false) else {
                    throw RESPProtocolError.invalidReplyValue
                }
                return (.integer(value), next)
            case UInt8(ascii: "_"):
                guard line.isEmpty else { throw RESPProtocolError.invalidReplyValue }
                return (.null, next)
            case UInt8(ascii: "#"):
                guard line.count == 1 else { throw RESPProtocolError.invalidReplyValue }
                switch buffer.respByte(at: line.lowerBound) {
                case UInt8(ascii: "t"): return (.boolean(true), next)
                case UInt8(ascii: "f"): return (.boolean(false), next)
                default: throw RESPProtocolError.invalidReplyValue
                }
            case UInt8(ascii: ","):
                guard let value = Self.double(buffer.respString(line)) else {
                    throw RESPProtocolError.invalidReplyValue
                }
                return (.double(value), next)
            case UInt8(ascii: "("):
                // Validated as digits so garbage fails here, not in whoever reads the number.
                var digits = line
                if let first = digits.first, Self.isSign(buffer.respByte(at: first)) { digits = digits.dropFirst() }
                guard !digits.isEmpty, digits.allSatisfy({ Self.isDigit(buffer.respByte(at: $0)) }) else {
                    throw RESPProtocolError.invalidReplyValue
                }
                return (build ? .bulkString(buffer.respSlice(line)) : .null, next)
            case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
                guard let length = buffer.respInteger(line, strict: false) else {
                    throw RESPProtocolError.invalidReplyLength
                }
                if length == -1 && type == UInt8(ascii: "$") { return (.null, next) }
                guard length >= 0 else { throw RESPProtocolError.invalidReplyLength }
                guard length <= self.maxBulkBytes else { throw RESPProtocolError.replyTooBig }
                let bytes = next..<(next + Int(length))
                guard buffer.readableBytes - bytes.upperBound >= 2 else { return nil }
                guard buffer.respIsCRLF(at: bytes.upperBound) else {
                    throw RESPProtocolError.bulkNotTerminated
                }
                let end = bytes.upperBound + 2
                switch type {
                case UInt8(ascii: "$"):
                    return (build ? .bulkString(buffer.respSlice(bytes)) : .null, end)
                case UInt8(ascii: "!"):
                    return (build ? .error(buffer.respString(bytes)) : .null, end)
                default:
                    // `=15\r\ntxt:Some string\r\n`: three bytes of format, a colon, then the text.
                    guard bytes.count >= 4, buffer.respByte(at: bytes.lowerBound + 3) == UInt8(ascii: ":")
                    else {
                        throw RESPProtocolError.invalidReplyValue
                    }
                    return (
                        build ? .verbatim(buffer.respString((bytes.lowerBound + 4)..<bytes.upperBound)) : .null,
                        end
                    )
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"),
                UInt8(ascii: "|"):
                guard let count = buffer.respInteger(line, strict: false) else {
                    throw RESPProtocolError.invalidReplyLength
                }
                if count == -1 && type == UInt8(ascii: "*") { return (.nullArray, next) }
                guard count >= 0 else { throw RESPProtocolError.invalidReplyLength }
                guard count <= self.maxElements else { throw RESPProtocolError.replyTooBig }
                guard depth < self.maxDepth else { throw RESPProtocolError.replyTooDeep }
                let isPaired = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
                let build = build && type != UInt8(ascii: "|")
                var elements: [RESPValue] = []
                if build { elements.reserveCapacity(Int(count) * (isPaired ? 2 : 1)) }
                var end = next
                for _ in 0..<(Int(count) * (isPaired ? 2 : 1)) {
                    guard
                        let (element, elementEnd) = try self.parse(
                            buffer, at: end, depth: depth + 1, build: build)
                    else { return nil }
                    if build { elements.append(element) }
                    end = elementEnd
                }
                switch type {
                case UInt8(ascii: "|"):
                    position = end
                    continue
                case _ where !build:
                    return (.null, end)
                case UInt8(ascii: "*"):
                    return (.array(elements), end)
                case UInt8(ascii: "~"):
                    return (.set(elements), end)
                case UInt8(ascii: ">"):
                    return (.push(elements), end)
                default:
                    var pairs: [(RESPValue, RESPValue)] = []
                    pairs.reserveCapacity(Int(count))
                    for index in stride(from: 0, to: elements.count, by: 2) {
                        pairs.append((elements[index], elements[index + 1]))
                    }
                    return (.map(pairs), end)
                }
            default:
                throw RESPProtocolError.unknownReplyType(type)
            }
        }
    }

    /// The type byte and the line after it up to its CR, once CR LF have arrived; nil until then.
    private func line(_ buffer: ByteBuffer, at start: Int) throws -> (type: UInt8, line: Range<Int>)? {
        guard start < buffer.readableBytes else { return nil }
        guard let carriageReturn = buffer.respFirstOffset(of: UInt8(ascii: "\r"), from: start + 1)
        else {
            if buffer.readableBytes - start > self.maxLineBytes { throw RESPProtocolError.replyTooBig }
            return nil
        }
        if carriageReturn - start > self.maxLineBytes { throw RESPProtocolError.replyTooBig }
        guard carriageReturn + 1 < buffer.readableBytes else { return nil }
        guard buffer.respByte(at: carriageReturn + 1) == UInt8(ascii: "\n") else {
            throw RESPProtocolError.invalidReplyValue
        }
        return (buffer.respByte(at: start), (start + 1)..<carriageReturn)
    }

    /// RESP3 doubles: decimal or exponent notation, `inf`, `-inf` and `nan`; not the hex or `infinity` Swift also reads.
    private static func double(_ text: String) -> Double? {
        switch text {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        default:
            guard let first = text.utf8.first,
                isDigit(first) || isSign(first) || first == UInt8(ascii: "."),
                text.utf8.allSatisfy({
                    isDigit($0) || isSign($0) || $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e")
                })
            else { return nil }
            return Double(text)
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isSign(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
    }
}
