import NIOCore

/// Frames client bytes into commands like Redis's processInlineBuffer and processMultibulkBuffer.
///
/// The reader index moves only past whole frames. Progress within a partial frame is remembered as offsets
/// from the reader index, so a frame that trickles in is scanned once rather than once per read.
public struct RESPRequestDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    /// Decoded commands.
    public typealias InboundOut = RESPRequest

    /// The limits this decoder enforces.
    public let limits: RESPLimits

    private enum Mode {
        case idle
        case inline
        case multibulkCount
        case multibulkElements
    }

    private var mode: Mode = .idle
    /// Where the search for the end of the current line resumes.
    private var scanned = 0
    /// Where the next unparsed part of the multibulk frame starts.
    private var offset = 0
    /// Elements of the multibulk frame still to come.
    private var remaining = 0
    /// The length of the current element once its `$` header has been read.
    private var bulkLength: Int?
    /// Where each parsed element's bytes are; reused across frames so a frame allocates only its result.
    private var ranges: [Range<Int>] = []

    /// Creates a decoder enforcing `limits`.
    public init(limits: RESPLimits = .init()) {
        self.limits = limits
    }

    /// Returns the next command, skipping frames that carry none (`*0`, empty lines), or nil until one is whole.
    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPRequest? {
        // Looping here matters: returning nil after skipping an empty frame would leave later frames unread.
        while true {
            switch self.mode {
            case .idle:
                guard buffer.readableBytes > 0 else { return nil }
                self.mode = buffer.respByte(at: 0) == UInt8(ascii: "*") ? .multibulkCount : .inline
                self.scanned = 0
            case .inline:
                guard let arguments = try self.decodeInline(buffer: &buffer) else { return nil }
                if !arguments.isEmpty {
                    return RESPRequest(arguments: arguments, isInline: true)
                }
            case .multibulkCount:
                guard try self.decodeMultibulkCount(buffer: &buffer) else { return nil }
            case .multibulkElements:
                guard let arguments = try self.decodeMultibulkElements(buffer: &buffer) else { return nil }
                return RESPRequest(arguments: arguments, isInline: false)
            }
        }
    }

    /// Returns the commands still complete at EOF; a partial frame left after them is dropped without an error.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPRequest? {
        if let request = try self.decode(buffer: &buffer) {
            return request
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        self.reset()
        return nil
    }

    private mutating func reset() {
        self.mode = .idle
        self.scanned = 0
        self.offset = 0
        self.remaining = 0
        self.bulkLength = nil
        self.ranges.removeAll(keepingCapacity: true)
    }

    /// The words of the next line (possibly none), or nil until its newline arrives.
    private mutating func decodeInline(buffer: inout ByteBuffer) throws -> [ByteBuffer]? {
        guard let newline = buffer.respFirstOffset(of: UInt8(ascii: "\n"), from: self.scanned) else {
            self.scanned = buffer.readableBytes
            // A trailing CR may yet be stripped, so it does not count against the limit.
            var pending = buffer.readableBytes
            if pending > 0 && buffer.respByte(at: pending - 1) == UInt8(ascii: "\r") { pending -= 1 }
            if pending > self.limits.maxInlineBytes { throw RESPProtocolError.tooBigInlineRequest }
            return nil
        }
        var lineEnd = newline
        if lineEnd > 0 && buffer.respByte(at: lineEnd - 1) == UInt8(ascii: "\r") { lineEnd -= 1 }
        if lineEnd > self.limits.maxInlineBytes { throw RESPProtocolError.tooBigInlineRequest }
        let arguments = try InlineArgumentSplitter.split(
            buffer,
            line: 0..<lineEnd,
            maxArguments: self.limits.maxArguments
        )
        buffer.moveReaderIndex(forwardBy: newline + 1)
        self.reset()
        return arguments
    }

    /// Reads the `*<n>` line; true when decoding can go on, false until the line is whole.
    private mutating func decodeMultibulkCount(buffer: inout ByteBuffer) throws -> Bool {
        guard let line = try self.headerLine(in: buffer, from: 0, tooBig: .tooBigMultibulkCountString)
        else {
            return false
        }
        guard buffer.respIsCRLF(at: line.upperBound),
            let count = buffer.respInteger(line.dropFirst(), strict: true),
            count <= self.limits.maxArguments
        else {
            throw RESPProtocolError.invalidMultibulkLength
        }
        let frameEnd = line.upperBound + 2
        if count <= 0 {
            // Redis answers nothing to `*0` and `*-1`; the frame is consumed and decoding goes on.
            buffer.moveReaderIndex(forwardBy: frameEnd)
            self.reset()
            return true
        }
        self.remaining = Int(count)
        self.offset = frameEnd
        self.bulkLength = nil
        self.mode = .multibulkElements
        return true
    }

    /// Reads `$<len>` elements until the frame is whole, then consumes it and returns its arguments.
    private mutating func decodeMultibulkElements(buffer: inout ByteBuffer) throws -> [ByteBuffer]? {
        while self.remaining > 0 {
            let length: Int
            if let known = self.bulkLength {
                length = known
            } else {
                guard self.offset < buffer.readableBytes else { return nil }
                let first = buffer.respByte(at: self.offset)
                guard first == UInt8(ascii: "$") else { throw RESPProtocolError.expectedDollar(got: first) }
                if self.scanned < self.offset { self.scanned = self.offset }
                guard
                    let line = try self.headerLine(
                        in: buffer, from: self.offset, tooBig: .tooBigBulkCountString)
                else { return nil }
                guard buffer.respIsCRLF(at: line.upperBound),
                    let parsed = buffer.respInteger(line.dropFirst(), strict: true),
                    parsed >= 0, parsed <= self.limits.maxBulkBytes
                else {
                    throw RESPProtocolError.invalidBulkLength
                }
                length = Int(parsed)
                self.bulkLength = length
                self.offset = line.upperBound + 2
            }
            guard buffer.readableBytes - self.offset >= length + 2 else { return nil }
            guard buffer.respIsCRLF(at: self.offset + length) else {
                throw RESPProtocolError.bulkNotTerminated
            }
            self.ranges.append(self.offset..<(self.offset + length))
            self.offset += length + 2
            self.bulkLength = nil
            self.remaining -= 1
        }
        var arguments: [ByteBuffer] = []
        arguments.reserveCapacity(self.ranges.count)
        for range in self.ranges {
            arguments.append(buffer.respSlice(range))
        }
        buffer.moveReaderIndex(forwardBy: self.offset)
        self.reset()
        return arguments
    }

    /// The header line starting at `start` up to (not including) its CR, once the CR and the byte after it are there.
    private mutating func headerLine(
        in buffer: ByteBuffer,
        from start: Int,
        tooBig: RESPProtocolError
    ) throws -> Range<Int>? {
        // Like Redis, a header ends at its CR; the byte after it must then be LF, which callers check.
        guard let carriageReturn = buffer.respFirstOffset(of: UInt8(ascii: "\r"), from: self.scanned)
        else {
            self.scanned = buffer.readableBytes
            if buffer.readableBytes - start > self.limits.maxInlineBytes { throw tooBig }
            return nil
        }
        self.scanned = carriageReturn
        guard carriageReturn + 1 < buffer.readableBytes else { return nil }
        return start..<carriageReturn
    }
}
