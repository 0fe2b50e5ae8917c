import BreakerServerTestSupport
import Foundation
import RedisTestSupport

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`), read to the end.
struct HTTPTestResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String
    /// Every header line as sent (`headers` keeps only the last of a repeated name).
    var headerLines: [String] = []

    static func fetch(port: Int, path: String, method: String = "GET", headers: [String] = []) async throws -> HTTPTestResponse {
        let socket = try await TestSocket.connect(port: port)
        let extra = headers.map { $0 + "\r\n" }.joined()
        return try await offPool {
            try socket.sendAll(Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)Connection: close\r\n\r\n".utf8))
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
        return HTTPTestResponse(
            status: status, headers: headers, body: String(text[split.upperBound...]), headerLines: Array(lines.dropFirst()))
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
