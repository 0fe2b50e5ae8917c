import CHiredis
import NIOCore

/// hiredis's request formatter, writing into a SwiftNIO buffer: every argument is passed with its
/// length, so keys and values may hold any bytes.
enum RedisCommandEncoder {
    /// Appends one command in RESP (a multibulk of bulk strings) to `buffer`.
    static func write(_ command: [[UInt8]], into buffer: inout ByteBuffer) {
        var target: UnsafeMutablePointer<CChar>?
        let length = withPointers(command) { argv, lengths in
            redisFormatCommandArgv(&target, Int32(command.count), argv, lengths)
        }
        // hiredis fails only when malloc does; there is nothing sensible to send then.
        guard length >= 0, let target else { fatalError("hiredis could not format a command (out of memory)") }
        defer { redisFreeCommand(target) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}

/// hiredis's reply parser fed from a SwiftNIO channel. It keeps no socket: bytes go in with `feed`,
/// whole replies come out of `next()`, each copied into a Swift value and freed at once.
/// Not thread-safe: one event loop owns it.
final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reader (out of memory)") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Hands hiredis the readable bytes of `buffer` (it copies them into its own buffer).
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw error() }
    }

    /// The next whole reply, or nil until more bytes arrive.
    func next() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        if redisReaderGetReply(reader, &raw) != REDIS_OK { throw error() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self))
    }

    private func error() -> RedisError {
        RedisError(.protocol, String(cString: chiredis_reader_errstr(reader)))
    }
}

extension RedisReply {
    /// Copies a hiredis reply, reading every string with its length (replies are binary).
    init(copying reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(r.integer))
        case REDIS_REPLY_STRING:
            self = .string(Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let e = r.element[i] { elements.append(RedisReply(copying: e)) } else { elements.append(.null) }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }
}

/// Calls `body` with C arrays of pointers to, and lengths of, every argument.
func withPointers<R>(
    _ arguments: [[UInt8]],
    _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
) -> R {
    let count = arguments.count
    let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(count, 1))
    let lengths = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
    defer {
        argv.deallocate()
        lengths.deallocate()
    }
    // Nest withUnsafeBufferPointer over every argument so all pointers stay valid during `body`.
    func bind(_ i: Int) -> R {
        if i == count { return body(argv, lengths) }
        return arguments[i].withUnsafeBufferPointer { buffer in
            argv[i] = UnsafeRawPointer(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                .assumingMemoryBound(to: CChar.self)
            lengths[i] = buffer.count
            return bind(i + 1)
        }
    }
    return bind(0)
}
