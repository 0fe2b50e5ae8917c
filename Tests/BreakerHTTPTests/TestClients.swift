import Foundation
import NIOCore
import RESP
import RedisTestSupport

/// A blocking TCP socket on 127.0.0.1; every call runs off the cooperative pool.
final class TestSocket: @unchecked Sendable {
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    static func connect(port: Int, timeoutSeconds: Int = 15) async throws -> TestSocket {
        try await offPool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw TestRedisError("socket() failed") }
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
    func sendAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestRedisError("send failed") }
            sent += n
        }
    }

    /// Some bytes (blocking); empty at EOF; throws on timeout.
    func receive() throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == ECONNRESET { return [] }
            throw TestRedisError("nothing received within the timeout")
        }
        return Array(chunk[0..<n])
    }
}

/// A RESP client that sends multibulk commands and reads each reply as text (arrays joined by newlines).
final class RESPTestClient: @unchecked Sendable {
    private let socket: TestSocket
    private var buffer = ByteBuffer()
    private var decoder = RESPReplyDecoder()

    private init(socket: TestSocket) { self.socket = socket }

    static func connect(port: Int) async throws -> RESPTestClient {
        RESPTestClient(socket: try await TestSocket.connect(port: port))
    }

    func command(_ arguments: String...) async throws -> String {
        var frame = "*\(arguments.count)\r\n"
        for a in arguments { frame += "$\(a.utf8.count)\r\n\(a)\r\n" }
        let bytes = Array(frame.utf8)
        return try await offPool {
            try self.socket.sendAll(bytes)
            while true {
                if let value = try self.decoder.decode(buffer: &self.buffer) { return Self.text(value) }
                let chunk = try self.socket.receive()
                guard !chunk.isEmpty else { throw TestRedisError("connection closed") }
                self.buffer.writeBytes(chunk)
            }
        }
    }

    static func text(_ value: RESPValue) -> String {
        switch value {
        case .simpleString(let s), .error(let s), .verbatim(let s): return s
        case .bulkString(let b): return String(buffer: b)
        case .integer(let i): return String(i)
        case .array(let a), .push(let a), .set(let a): return a.map(text).joined(separator: "\n")
        default: return "\(value)"
        }
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`), read to the end.
struct HTTPTestResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String

    static func fetch(port: Int, path: String, method: String = "GET") async throws -> HTTPTestResponse {
        let socket = try await TestSocket.connect(port: port)
        return try await offPool {
            try socket.sendAll(Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
            var data: [UInt8] = []
            while true {
                let chunk = try socket.receive()
                if chunk.isEmpty { break }
                data += chunk
                // A server that keeps the connection open anyway (Chromium's DevTools) has said all
                // once Content-Length bytes of body are in.
                if let r = try? parse(data), let length = r.headers["content-length"].flatMap({ Int($0) }),
                    r.body.utf8.count >= length
                {
                    return r
                }
            }
            return try parse(data)
        }
    }

    static func parse(_ data: [UInt8]) throws -> HTTPTestResponse {
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestRedisError("no HTTP head in: \(text.prefix(200))") }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let c = line.firstIndex(of: ":") {
                headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return HTTPTestResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    /// Prometheus text as series -> value (`name{labels}` exactly as emitted).
    var samples: [String: Double] {
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}
