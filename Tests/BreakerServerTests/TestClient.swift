import Foundation
import NIOCore
import RESP
import RedisTestSupport

/// A raw RESP client over a plain blocking socket: it sends exactly the bytes a test gives it and
/// decodes replies with `RESPReplyDecoder`. Every blocking call runs off the cooperative pool.
final class TestClient: @unchecked Sendable {
    private let fd: Int32
    private var buffer = ByteBuffer()
    private var decoder = RESPReplyDecoder()

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit { close(fd) }

    /// `receiveBufferBytes` shrinks the kernel's receive buffer, to play a slow reader.
    static func connect(port: Int, timeoutSeconds: Int = 15, receiveBufferBytes: Int32? = nil) async throws -> TestClient {
        try await offPool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw TestRedisError("socket() failed") }
            if var size = receiveBufferBytes {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else {
                close(fd)
                throw TestRedisError("cannot connect to 127.0.0.1:\(port)")
            }
            var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return TestClient(fd: fd)
        }
    }

    /// Sends raw bytes as they are.
    func send(_ text: String) async throws {
        try await send(bytes: Array(text.utf8))
    }

    func send(bytes: [UInt8]) async throws {
        try await offPool {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Foundation.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw TestRedisError("send failed") }
                sent += n
            }
        }
    }

    /// Sends one command as a multibulk frame, as client libraries do, and reads its reply.
    func command(_ arguments: String...) async throws -> RESPValue {
        try await command(arguments)
    }

    func command(_ arguments: [String]) async throws -> RESPValue {
        try await send(Self.frame(arguments))
        return try await read()
    }

    static func frame(_ arguments: [String]) -> String {
        var s = "*\(arguments.count)\r\n"
        for a in arguments { s += "$\(a.utf8.count)\r\n\(a)\r\n" }
        return s
    }

    /// Closes the sending half, as `printf ... | nc -N` does after its input.
    func finishSending() async throws {
        try await offPool { _ = shutdown(self.fd, Int32(SHUT_WR)) }
    }

    /// Reads the next reply; throws when none arrives within the socket timeout or the peer closed.
    func read() async throws -> RESPValue {
        try await offPool {
            while true {
                if let value = try self.decoder.decode(buffer: &self.buffer) { return value }
                guard try self.receive() > 0 else { throw TestRedisError("connection closed") }
            }
        }
    }

    /// True when the server closes the connection (after any replies still unread) within the timeout.
    func isClosedByServer() async throws -> Bool {
        try await offPool {
            while true {
                do {
                    if try self.receive() == 0 { return true }
                } catch {
                    return false
                }
            }
        }
    }

    /// Reads bytes into the buffer: their count, 0 at EOF; throws on timeout.
    private func receive() throws -> Int {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == ECONNRESET { return 0 }
            throw TestRedisError("no reply within the timeout")
        }
        buffer.writeBytes(chunk[0..<n])
        return n
    }
}

extension RESPValue {
    /// The text of a simple string, error, bulk string or verbatim string; nil for anything else.
    var text: String? {
        switch self {
        case .simpleString(let s), .error(let s), .verbatim(let s): return s
        case .bulkString(let b): return String(buffer: b)
        default: return nil
        }
    }

    var elements: [RESPValue]? {
        switch self {
        case .array(let a), .push(let a), .set(let a): return a
        default: return nil
        }
    }
}
