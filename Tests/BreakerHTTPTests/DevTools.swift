import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Synchronization

/// Debian's chromium, headless, with its DevTools port open, so a test can read the live page's DOM
/// while the page keeps running (no reload, no second load).
final class HeadlessChromium: @unchecked Sendable {
    private let process: Process
    private let profile: URL
    private let closed = Atomic<Bool>(false)
    let devToolsPort: Int

    private init(process: Process, profile: URL, devToolsPort: Int) {
        self.process = process
        self.profile = profile
        self.devToolsPort = devToolsPort
    }

    static var executable: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            for name in ["chromium", "chromium-browser"] {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    /// Opens `url` at a phone's size; returns once the DevTools port is known.
    static func open(_ url: String) async throws -> HeadlessChromium {
        guard let path = executable else { throw TestRedisError("chromium is not installed: run scripts/setup") }
        return try await offPool {
            let profile = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-chromium-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: path)
            p.arguments = [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--user-data-dir=\(profile.path)",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=390,844", url,
            ]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let portFile = profile.appendingPathComponent("DevToolsActivePort")
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let text = try? String(contentsOf: portFile, encoding: .utf8),
                    let port = text.split(separator: "\n").first.flatMap({ Int($0) })
                {
                    return HeadlessChromium(process: p, profile: profile, devToolsPort: port)
                }
                usleep(50_000)
            }
            p.terminate()
            throw TestRedisError("chromium did not open its DevTools port within 30 s")
        }
    }

    /// The page target's WebSocket, once the page with `url` is listed.
    func page(_ url: String) async throws -> DevToolsPage {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(20))
        while clock.now < deadline {
            if let list = try? await HTTPTestResponse.fetch(port: devToolsPort, path: "/json/list"),
                let targets = (try? JSONSerialization.jsonObject(with: Data(list.body.utf8))) as? [[String: Any]],
                let target = targets.first(where: { $0["type"] as? String == "page" && ($0["url"] as? String)?.hasPrefix(url) == true }),
                let id = target["id"] as? String
            {
                return try await DevToolsPage.connect(port: devToolsPort, path: "/devtools/page/\(id)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestRedisError("chromium lists no page for \(url)")
    }

    /// Stops the browser and removes its profile; once, however often it is called.
    func close() async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        _ = try? await offPool {
            self.process.terminate()
            let deadline = Date().addingTimeInterval(10)
            while self.process.isRunning && Date() < deadline { usleep(20_000) }
            if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
            self.process.waitUntilExit()
            try? FileManager.default.removeItem(at: self.profile)
        }
    }
}

/// A minimal DevTools protocol client over a WebSocket (RFC 6455, client side): enough to evaluate
/// JavaScript in the page and read the result.
final class DevToolsPage: @unchecked Sendable {
    private let socket: TestSocket
    private var pending: [UInt8]
    private var nextID = 0

    private init(socket: TestSocket, pending: [UInt8]) {
        self.socket = socket
        self.pending = pending
    }

    static func connect(port: Int, path: String) async throws -> DevToolsPage {
        let socket = try await TestSocket.connect(port: port)
        return try await offPool {
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: YnJlYWtlcmQtdGVzdC1rZXk=\r\nSec-WebSocket-Version: 13\r\n\r\n"
            try socket.sendAll(Array(request.utf8))
            var data: [UInt8] = []
            while true {
                let chunk = try socket.receive()
                guard !chunk.isEmpty else { throw TestRedisError("DevTools closed the WebSocket handshake") }
                data += chunk
                if let end = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                    let head = String(decoding: data[..<end.lowerBound], as: UTF8.self)
                    guard head.hasPrefix("HTTP/1.1 101") else { throw TestRedisError("no WebSocket upgrade: \(head)") }
                    return DevToolsPage(socket: socket, pending: Array(data[end.upperBound...]))
                }
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value as a string (JSON.stringify it for objects).
    func evaluate(_ expression: String) async throws -> String {
        let reply = try await call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        let result = (reply["result"] as? [String: Any])?["result"] as? [String: Any]
        if let value = result?["value"] { return value as? String ?? "\(value)" }
        return ""
    }

    /// Sends one DevTools command and returns its reply (the whole message: `result` or `error`).
    func call(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        let message = try JSONSerialization.data(withJSONObject: ["method": method, "params": params])
        let frame = try await offPool { () throws -> Data in
            self.nextID += 1
            let id = self.nextID
            var object = (try JSONSerialization.jsonObject(with: message) as? [String: Any]) ?? [:]
            object["id"] = id
            try self.sendText(try JSONSerialization.data(withJSONObject: object))
            while true {
                let frame = Data(try self.readMessage())
                guard let reply = (try? JSONSerialization.jsonObject(with: frame)) as? [String: Any],
                    reply["id"] as? Int == id
                else { continue }
                return frame
            }
        }
        return (try JSONSerialization.jsonObject(with: frame) as? [String: Any]) ?? [:]
    }

    /// A PNG of the page as it is now, `width` × `height` CSS pixels, written to `file`.
    @discardableResult
    func screenshot(width: Int, height: Int, to file: URL) async throws -> Data {
        _ = try await call(
            "Emulation.setDeviceMetricsOverride",
            ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600])
        let reply = try await call("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": false])
        let encoded = ((reply["result"] as? [String: Any])?["data"] as? String) ?? ""
        guard let data = Data(base64Encoded: encoded), !data.isEmpty else {
            throw TestRedisError("no screenshot: \(reply)")
        }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
        return data
    }

    private func sendText(_ payload: Data) throws {
        var frame: [UInt8] = [0x81]
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xff)) }
        }
        frame += mask
        for (i, byte) in payload.enumerated() { frame.append(byte ^ mask[i % 4]) }
        try socket.sendAll(frame)
    }

    private func need(_ count: Int) throws {
        while pending.count < count {
            let chunk = try socket.receive()
            guard !chunk.isEmpty else { throw TestRedisError("DevTools closed the WebSocket") }
            pending += chunk
        }
    }

    /// One whole message (continuation frames joined); the server's frames are never masked.
    private func readMessage() throws -> [UInt8] {
        var message: [UInt8] = []
        while true {
            try need(2)
            let fin = pending[0] & 0x80 != 0
            var length = Int(pending[1] & 0x7f)
            var offset = 2
            if length == 126 {
                try need(4)
                length = Int(pending[2]) << 8 | Int(pending[3])
                offset = 4
            } else if length == 127 {
                try need(10)
                length = (2..<10).reduce(0) { $0 << 8 | Int(pending[$1]) }
                offset = 10
            }
            try need(offset + length)
            message += pending[offset..<(offset + length)]
            pending.removeFirst(offset + length)
            if fin { return message }
        }
    }
}
