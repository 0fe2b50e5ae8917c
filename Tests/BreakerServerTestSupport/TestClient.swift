import Foundation
import NIOCore
import RESP
import RedisTestSupport

/// A blocking TCP socket on 127.0.0.1; every `async` call runs off the cooperative pool.
public final class TestSocket: @unchecked Sendable {
    public let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// `receiveBufferBytes` shrinks the kernel's receive buffer, to play a slow reader.
    public static func connect(port: Int, timeoutSeconds: Int = 15, receiveBufferBytes: Int32? = nil) async throws -> TestSocket {
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
            return TestSocket(fd: fd)
        }
    }

    /// Sends every byte (blocking).
    public func sendAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestRedisError("send failed") }
            sent += n
        }
    }

    /// Some bytes (blocking); empty at EOF or on a reset; throws on timeout.
    public func receive() throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == ECONNRESET { return [] }
            throw TestRedisError("nothing received within the timeout")
        }
        return Array(chunk[0..<n])
    }

    /// Closes the sending half.
    public func shutdownSending() {
        _ = shutdown(fd, Int32(SHUT_WR))
    }
}

/// A raw RESP client over a plain blocking socket: it sends exactly the bytes a test gives it and
/// decodes replies with `RESPReplyDecoder`. Every blocking call runs off the cooperative pool.
public final class TestClient: @unchecked Sendable {
    private let socket: TestSocket
    private var buffer = ByteBuffer()
    private var decoder = RESPReplyDecoder()

    private init(socket: TestSocket) {
        self.socket = socket
    }

    /// `receiveBufferBytes` shrinks the kernel's receive buffer, to play a slow reader.
    public static func connect(port: Int, timeoutSeconds: Int = 15, receiveBufferBytes: Int32? = nil) async throws -> TestClient {
        TestClient(
            socket: try await TestSocket.connect(
                port: port, timeoutSeconds: timeoutSeconds, receiveBufferBytes: receiveBufferBytes))
    }

    /// Sends raw bytes as they are.
    public func send(_ text: String) async throws {
        try await send(bytes: Array(text.utf8))
    }

    public func send(bytes: [UInt8]) async throws {
        try await offPool { try self.socket.sendAll(bytes) }
    }

    /// Sends one command as a multibulk frame, as client libraries do, and reads its reply.
    public func command(_ arguments: String...) async throws -> RESPValue {
        try await command(arguments)
    }

    public func command(_ arguments: [String]) async throws -> RESPValue {
        try await send(Self.frame(arguments))
        return try await read()
    }

    /// Like `command`, with the reply as text (`RESPValue.rendered`).
    public func commandText(_ arguments: String...) async throws -> String {
        try await command(arguments).rendered
    }

    public static func frame(_ arguments: [String]) -> String {
        var s = "*\(arguments.count)\r\n"
        for a in arguments { s += "$\(a.utf8.count)\r\n\(a)\r\n" }
        return s
    }

    /// Closes the sending half, as `printf ... | nc -N` does after its input.
    public func finishSending() async throws {
        try await offPool { self.socket.shutdownSending() }
    }

    /// Reads the next reply; throws when none arrives within the socket timeout or the peer closed.
    public func read() async throws -> RESPValue {
        try await offPool {
            while true {
                if let value = try self.decoder.decode(buffer: &self.buffer) { return value }
                guard try self.receive() > 0 else { throw TestRedisError("connection closed") }
            }
        }
    }

    /// True when the server closes the connection (after any replies still unread) within the timeout.
    public func isClosedByServer() async throws -> Bool {
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
        let chunk = try socket.receive()
        buffer.writeBytes(chunk)
        return chunk.count
    }
}

extension RESPValue {
    /// The text of a simple string, error, bulk string or verbatim string; nil for anything else.
    public var text: String? {
        switch self {
        case .simpleString(let s), .error(let s), .verbatim(let s): return s
        case .bulkString(let b): return String(buffer: b)
        default: return nil
        }
    }

    public var elements: [RESPValue]? {
        switch self {
        case .array(let a), .push(let a), .set(let a): return a
        default: return nil
        }
    }

    /// Any reply as text: strings as they are, integers in decimal, arrays joined by newlines.
    public var rendered: String {
        switch self {
        case .simpleString(let s), .error(let s), .verbatim(let s): return s
        case .bulkString(let b): return String(buffer: b)
        case .integer(let i): return String(i)
        case .array(let a), .push(let a), .set(let a): return a.map(\.rendered).joined(separator: "\n")
        default: return "\(self)"
        }
    }
}
