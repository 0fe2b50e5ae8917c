import NIOCore

extension RESPValue {
    /// Appends this reply to `buffer` as the connection's protocol version spells it.
    public func encode(into buffer: inout ByteBuffer, version: RESPVersion) {
        switch self {
        case .simpleString(let text):
            buffer.writeInteger(UInt8(ascii: "+"))
            Self.writeLine(text, into: &buffer)
        case .error(let text):
            buffer.writeInteger(UInt8(ascii: "-"))
            Self.writeLine(text, into: &buffer)
        case .integer(let value):
            Self.writeHeader(UInt8(ascii: ":"), value, into: &buffer)
        case .bulkString(let bytes):
            Self.writeHeader(UInt8(ascii: "$"), Int64(bytes.readableBytes), into: &buffer)
            buffer.writeImmutableBuffer(bytes)
            buffer.writeStaticString("\r\n")
        case .null:
            buffer.writeStaticString(version == .resp3 ? "_\r\n" : "$-1\r\n")
        case .nullArray:
            buffer.writeStaticString(version == .resp3 ? "_\r\n" : "*-1\r\n")
        case .array(let elements):
            Self.writeAggregate(UInt8(ascii: "*"), elements, into: &buffer, version: version)
        case .set(let elements):
            let type = version == .resp3 ? UInt8(ascii: "~") : UInt8(ascii: "*")
            Self.writeAggregate(type, elements, into: &buffer, version: version)
        case .push(let elements):
            let type = version == .resp3 ? UInt8(ascii: ">") : UInt8(ascii: "*")
            Self.writeAggregate(type, elements, into: &buffer, version: version)
        case .map(let pairs):
            if version == .resp3 {
                Self.writeHeader(UInt8(ascii: "%"), Int64(pairs.count), into: &buffer)
            } else {
                Self.writeHeader(UInt8(ascii: "*"), Int64(pairs.count) * 2, into: &buffer)
            }
            for (key, value) in pairs {
                key.encode(into: &buffer, version: version)
                value.encode(into: &buffer, version: version)
            }
        case .double(let value):
            let text = Self.shortestText(value)
            if version == .resp3 {
                buffer.writeInteger(UInt8(ascii: ","))
                buffer.writeString(text)
                buffer.writeStaticString("\r\n")
            } else {
                Self.writeBulk(text, into: &buffer)
            }
        case .boolean(let value):
            if version == .resp3 {
                buffer.writeStaticString(value ? "#t\r\n" : "#f\r\n")
            } else {
                buffer.writeStaticString(value ? ":1\r\n" : ":0\r\n")
            }
        case .verbatim(let text):
            if version == .resp3 {
                Self.writeHeader(UInt8(ascii: "="), Int64(text.utf8.count + 4), into: &buffer)
                buffer.writeStaticString("txt:")
                buffer.writeString(text)
                buffer.writeStaticString("\r\n")
            } else {
                Self.writeBulk(text, into: &buffer)
            }
        }
    }

    /// Writes a simple string or error body and its CRLF.
    ///
    /// A `+`/`-` reply ends at the first CR or LF, so one inside the text would cut the reply short and make
    /// the client read the rest as a second, garbled reply. Such bytes become spaces, as Redis does.
    private static func writeLine(_ text: String, into buffer: inout ByteBuffer) {
        if text.utf8.contains(where: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) {
            buffer.writeBytes(
                text.utf8.lazy.map {
                    $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") ? UInt8(ascii: " ") : $0
                }
            )
        } else {
            buffer.writeString(text)
        }
        buffer.writeStaticString("\r\n")
    }

    private static func writeHeader(_ type: UInt8, _ value: Int64, into buffer: inout ByteBuffer) {
        buffer.writeInteger(type)
        buffer.writeString(String(value))
        buffer.writeStaticString("\r\n")
    }

    private static func writeBulk(_ text: String, into buffer: inout ByteBuffer) {
        Self.writeHeader(UInt8(ascii: "$"), Int64(text.utf8.count), into: &buffer)
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
    }

    private static func writeAggregate(
        _ type: UInt8,
        _ elements: [RESPValue],
        into buffer: inout ByteBuffer,
        version: RESPVersion
    ) {
        Self.writeHeader(type, Int64(elements.count), into: &buffer)
        for element in elements {
            element.encode(into: &buffer, version: version)
        }
    }

    /// The shortest text that reads back as the same double, spelled as Redis does (`1` not `1.0`, `inf`, `nan`).
    static func shortestText(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        // Swift's description is already the shortest round-tripping form.
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }
}
