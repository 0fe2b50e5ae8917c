import NIOCore

/// Splits an inline command line into arguments exactly like Redis's sdssplitargs, so nc users see Redis's rules.
enum InlineArgumentSplitter {
    /// The arguments of the line at `line` (offsets from the reader index, without its line ending).
    static func split(_ buffer: ByteBuffer, line: Range<Int>, maxArguments: Int) throws
        -> [ByteBuffer]
    {
        try buffer.withUnsafeReadableBytes { bytes in
            // Redis reads the line as a C string, so a NUL byte ends it.
            let end = bytes[line].firstIndex(of: 0) ?? line.upperBound
            func at(_ index: Int) -> UInt8 { index < end ? bytes[index] : 0 }

            var arguments: [ByteBuffer] = []
            var position = line.lowerBound
            while true {
                while position < end && isSpace(bytes[position]) { position += 1 }
                guard position < end else { return arguments }
                guard arguments.count < maxArguments else { throw RESPProtocolError.tooManyArguments }

                var word = Word(start: position)
                var inDoubleQuotes = false
                var inSingleQuotes = false
                var done = false
                while !done {
                    let byte = at(position)
                    if inDoubleQuotes {
                        if byte == UInt8(ascii: "\\") && at(position + 1) == UInt8(ascii: "x"),
                            let high = hexValue(at(position + 2)), let low = hexValue(at(position + 3))
                        {
                            word.append(high << 4 | low, bytes: bytes)
                            position += 3
                        } else if byte == UInt8(ascii: "\\") && at(position + 1) != 0 {
                            position += 1
                            word.append(unescaped(bytes[position]), bytes: bytes)
                        } else if byte == UInt8(ascii: "\"") {
                            // A closing quote glued to more text (`"a"b`) is rejected rather than guessed at.
                            let next = at(position + 1)
                            if next != 0 && !isSpace(next) { throw RESPProtocolError.unbalancedQuotes }
                            done = true
                        } else if byte == 0 {
                            throw RESPProtocolError.unbalancedQuotes
                        } else {
                            word.append(offset: position, bytes: bytes)
                        }
                    } else if inSingleQuotes {
                        if byte == UInt8(ascii: "\\") && at(position + 1) == UInt8(ascii: "'") {
                            position += 1
                            word.append(offset: position, bytes: bytes)
                        } else if byte == UInt8(ascii: "'") {
                            let next = at(position + 1)
                            if next != 0 && !isSpace(next) { throw RESPProtocolError.unbalancedQuotes }
                            done = true
                        } else if byte == 0 {
                            throw RESPProtocolError.unbalancedQuotes
                        } else {
                            word.append(offset: position, bytes: bytes)
                        }
                    } else {
                        switch byte {
                        case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"), 0:
                            done = true
                        case UInt8(ascii: "\""):
                            inDoubleQuotes = true
                        case UInt8(ascii: "'"):
                            inSingleQuotes = true
                        default:
                            word.append(offset: position, bytes: bytes)
                        }
                    }
                    if position < end { position += 1 }
                }
                arguments.append(word.finish(in: buffer))
            }
        }
    }

    /// C's isspace in the C locale, which sdssplitargs uses between words.
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (byte >= 0x09 && byte <= 0x0D)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func unescaped(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "n"): return 0x0A
        case UInt8(ascii: "r"): return 0x0D
        case UInt8(ascii: "t"): return 0x09
        case UInt8(ascii: "b"): return 0x08
        case UInt8(ascii: "a"): return 0x07
        default: return byte
        }
    }

    /// One argument being collected: a slice of the line while its bytes are contiguous, a copy once they are not.
    private struct Word {
        var start: Int
        var end: Int
        var copy: ByteBuffer?

        init(start: Int) {
            self.start = start
            self.end = start
        }

        /// Adds the line's own byte at `offset`, keeping the word a zero-copy slice when it can.
        mutating func append(offset: Int, bytes: UnsafeRawBufferPointer) {
            if self.copy == nil {
                if self.start == self.end {
                    self.start = offset
                    self.end = offset + 1
                    return
                }
                if offset == self.end {
                    self.end += 1
                    return
                }
            }
            self.append(bytes[offset], bytes: bytes)
        }

        /// Adds a byte that is not at its place in the line (an escape, or text after a quote inside the word).
        mutating func append(_ byte: UInt8, bytes: UnsafeRawBufferPointer) {
            if self.copy == nil {
                var copy = ByteBuffer()
                copy.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[self.start..<self.end]))
                self.copy = copy
            }
            self.copy!.writeInteger(byte)
        }

        func finish(in buffer: ByteBuffer) -> ByteBuffer {
            self.copy ?? buffer.respSlice(self.start..<self.end)
        }
    }
}
