import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Testing

@testable import BreakerHTTP

/// The operators' plane locked (docs/OPERATIONS.md, "The lock").
@Suite struct AccessTests {
    static let token = "tok-3f9a1c77e0"
    static let adminPassword = "adm-pw-81d2"

    static func basic(_ user: String, _ password: String) -> String {
        "Authorization: Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    static let paths = ["/", "/index.html", "/api/breakers", "/metrics", "/events", "/nope"]

    @Test func withATokenEveryPathButHealthzNeedsCredentials() async throws {
        let logs = LogCapture()
        let clock = ContinuousClock()
        let started = clock.now
        let t = try await HTTPTestServer.start(logs: logs) {
            $0.token = Self.token
            $0.adminPassword = Self.adminPassword
        }
        defer { Task { await t.stop() } }
        #expect(try await t.get("/healthz").status == 200)

        let refused: [[String]] = [
            [], ["Authorization: Bearer wrong"], ["Authorization: Bearer " + Self.token.dropLast()],
            ["Authorization: Bearer " + Self.token + "x"], ["Authorization: Bearer"], ["Authorization: Basic !!!"],
            [Self.basic("admin", "wrong")], [Self.basic("bob", Self.adminPassword)], [Self.basic("admin", "")],
            ["Authorization: Token " + Self.token],
        ]
        var refusals = 0
        for path in Self.paths {
            for headers in refused {
                let r = try await t.get(path, headers: headers)
                #expect(r.status == 401, "\(path) \(headers): \(r.status)")
                #expect(r.headerLines.contains(#"WWW-Authenticate: Basic realm="breakerd", charset="UTF-8""#), "\(r.headerLines)")
                #expect(r.headerLines.contains(#"WWW-Authenticate: Bearer realm="breakerd""#), "\(r.headerLines)")
                #expect(!r.body.contains("breakerd_"), "nothing leaks in a refusal")
                refusals += 1
            }
        }
        let let_in: [[String]] = [
            ["Authorization: Bearer " + Self.token], ["authorization: bearer " + Self.token],
            [Self.basic("admin", Self.adminPassword)], [Self.basic("admin", Self.token)],
        ]
        for headers in let_in {
            for path in ["/", "/api/breakers", "/metrics"] {
                let r = try await t.get(path, headers: headers)
                #expect(r.status == 200, "\(path) \(headers): \(r.status)")
            }
            #expect(try await t.get("/nope", headers: headers).status == 404)
        }
        // The event stream, let in, opens.
        let socket = try await TestSocket.connect(port: t.httpPort)
        let opening = try await offPool { () -> String in
            try socket.sendAll(Array("GET /events HTTP/1.1\r\nHost: x\r\n\(Self.basic("admin", Self.adminPassword))\r\n\r\n".utf8))
            return String(decoding: try socket.receive(), as: UTF8.self)
        }
        #expect(opening.hasPrefix("HTTP/1.1 200 OK") && opening.contains("text/event-stream"), "\(opening)")
        let m = try await t.get("/metrics", headers: ["Authorization: Bearer " + Self.token]).samples
        #expect(m["breakerd_http_auth_failures_total"] == Double(refusals))
        // Every refusal is counted; the log has at most one line a second for this one peer.
        let elapsed = clock.now - started
        let lines = logs.all.filter { $0.contains("http request refused") }
        #expect(!lines.isEmpty && lines.count <= Int(elapsed.components.seconds) + 1, "\(lines.count) lines in \(elapsed)")
        #expect(lines.allSatisfy { $0.hasSuffix("peer=127.0.0.1") }, "\(lines)")
        #expect(lines.count < refusals)
    }

    @Test func metricsCanHaveATokenOfTheirOwn() async throws {
        let t = try await HTTPTestServer.start {
            $0.token = Self.token
            $0.metricsToken = "scrape-only-77"
        }
        defer { Task { await t.stop() } }
        #expect(try await t.get("/metrics", headers: ["Authorization: Bearer scrape-only-77"]).status == 200)
        #expect(try await t.get("/metrics", headers: ["Authorization: Bearer " + Self.token]).status == 200)
        #expect(try await t.get("/metrics").status == 401)
        // It opens /metrics only.
        #expect(try await t.get("/api/breakers", headers: ["Authorization: Bearer scrape-only-77"]).status == 401)
        #expect(try await t.get("/", headers: ["Authorization: Bearer scrape-only-77"]).status == 401)
    }

    @Test func metricsCanBePublicWhileTheRestIsLocked() async throws {
        let t = try await HTTPTestServer.start {
            $0.token = Self.token
            $0.metricsPublic = true
        }
        defer { Task { await t.stop() } }
        #expect(try await t.get("/metrics").status == 200)
        #expect(try await t.get("/api/breakers").status == 401)
        #expect(try await t.get("/").status == 401)
    }

    @Test func withoutATokenLoopbackStaysOpen() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        for path in ["/", "/api/breakers", "/metrics", "/healthz"] {
            #expect(try await t.get(path).status == 200, "\(path)")
        }
    }

    @Test func beyondLoopbackWithoutATokenIsRefused() async throws {
        for host in ["0.0.0.0", "::", "10.1.2.3", "breakerd.internal"] {
            let c = HTTPConfiguration(host: host, port: 0)
            #expect(c.problem()?.contains("--http-token") == true, "\(host)")
        }
        for host in ["127.0.0.1", "127.0.0.2", "::1", "localhost"] {
            #expect(HTTPConfiguration(host: host, port: 0).problem() == nil, "\(host)")
        }
        #expect(HTTPConfiguration(host: "0.0.0.0", port: 0, token: "t").problem() == nil)
        #expect(HTTPConfiguration(host: "127.0.0.1", port: 0, token: "").problem()?.contains("empty") == true)
        #expect(HTTPConfiguration(host: "127.0.0.1", port: 0, metricsToken: "m", metricsPublic: true).problem() != nil)

        // The server itself refuses, whoever made the configuration.
        let base = try await TestServer.start(prefix: TestRedis.uniquePrefix("lock"))
        defer { Task { await base.stop() } }
        let open = BreakerHTTPServer(
            configuration: HTTPConfiguration(host: "0.0.0.0", port: 0), server: base.server, metrics: BreakerMetrics())
        await #expect(throws: HTTPConfigurationError.self) { try await open.start() }
        #expect(open.port == 0)
        let locked = BreakerHTTPServer(
            configuration: HTTPConfiguration(host: "0.0.0.0", port: 0, token: Self.token), server: base.server,
            metrics: BreakerMetrics())
        try await locked.start()
        #expect(locked.port > 0)
        #expect(try await HTTPTestResponse.fetch(port: locked.port, path: "/api/breakers").status == 401)
        #expect(try await HTTPTestResponse.fetch(port: locked.port, path: "/healthz").status == 200)
        await locked.shutdown()
    }

    /// breakerd's own flags: beyond loopback without a token it exits before starting anything.
    @Test func breakerdRefusesToStartBeyondLoopbackWithoutAToken() async throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/breakerd").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build breakerd first: swift build")
        let r = try await runProcess(
            binary, ["--listen", "127.0.0.1:0", "--http", "0.0.0.0:0"], unsettingPrefixes: ["BREAKERD_"], timeoutSeconds: 30)
        #expect(r.status != 0)
        #expect(r.error.contains("--http-token"), "\(r.error)")
        let both = try await runProcess(
            binary, ["--listen", "127.0.0.1:0", "--http-token", "x", "--metrics-token", "y", "--metrics-public"],
            unsettingPrefixes: ["BREAKERD_"], timeoutSeconds: 30)
        #expect(both.status != 0)
        #expect(both.error.contains("exclude each other"), "\(both.error)")
    }

    @Test func secretsCompareWhole() {
        let secret = Array("s3cret".utf8)
        #expect(HTTPAccess.same(Array("s3cret".utf8), secret))
        for wrong in ["", "s", "s3cre", "s3cret ", "s3cret\u{0}", "S3cret", "s3cres", "xs3cret", "s3crets3cret"] {
            #expect(!HTTPAccess.same(Array(wrong.utf8), secret), "\(wrong)")
        }
        #expect(!HTTPAccess.same([], []))
    }
}
