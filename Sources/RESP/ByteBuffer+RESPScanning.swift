import NIOCore

// The decoders address bytes by offset from the reader index: the reader index stays put until a whole frame
// is there, and ByteToMessageHandler may compact the buffer between calls, which moves absolute indices only.
extension ByteBuffer {
    /// The offset of the first `byte` at or after `offset`, searching the readable bytes.
    func respFirstOffset(of byte: UInt8, from offset: Int) -> Int? {
        self.withUnsafeReadableBytes { bytes in
            guard offset < bytes.count else { return nil }
            return bytes[offset...].firstIndex(of: byte)
        }
    }

    /// The readable byte at `offset`; the caller has checked that it exists.
    func respByte(at offset: Int) -> UInt8 {
        self.withUnsafeReadableBytes { $0[offset] }
    }

    /// Whether the readable bytes at `offset` are CR LF; the caller has checked that both exist.
    func respIsCRLF(at offset: Int) -> Bool {
        self.withUnsafeReadableBytes {
            $0[offset] == UInt8(ascii: "\r") && $0[offset + 1] == UInt8(ascii: "\n")
        }
    }

    /// A slice of the readable bytes in `range`, sharing storage with this buffer.
    func respSlice(_ range: Range<Int>) -> ByteBuffer {
        self.getSlice(at: self.readerIndex + range.lowerBound, length: range.count)!
    }

    /// The readable bytes in `range` as a String, with invalid UTF-8 replaced.
    func respString(_ range: Range<Int>) -> String {
        self.withUnsafeReadableBytes {
            String(decoding: UnsafeRawBufferPointer(rebasing: $0[range]), as: UTF8.self)
        }
    }

    /// The decimal integer spelled by the bytes in `range`, or nil when they are not one.
    ///
    /// `strict` follows Redis's string2ll, which requests must satisfy: no `+`, no leading zeros, no `-0`.
    /// Replies get the RESP3 grammar, which allows a `+` sign.
    func respInteger(_ range: Range<Int>, strict: Bool) -> Int64? {
        self.withUnsafeReadableBytes { bytes in
            var index = range.lowerBound
            guard index < range.upperBound else { return nil }
            var negative = false
            if bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            } else if bytes[index] == UInt8(ascii: "+") && !strict {
                index += 1
            }
            guard index < range.upperBound else { return nil }
            if strict && bytes[index] == UInt8(ascii: "0") && (range.upperBound - index > 1 || negative) {
                return nil
            }
            // Accumulating negatively reaches Int64.min without overflowing.
            var value: Int64 = 0
            while index < range.upperBound {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = shifted.subtractingReportingOverflow(Int64(digit))
                guard !overflow1 && !overflow2 else { return nil }
                value = next
                index += 1
            }
            if negative { return value }
            return value == .min ? nil : -value
        }
    }
}
