import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Testing

@Suite struct MetricsTests {
    @Test func aTripMovesTheStateGaugeAndTheCounters() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.commandText("CLIENT", "SETNAME", "replica-1") == "OK")
        try await t.calls("pay", "SUCCESS", count: 1, through: c)

        let before = try await t.get("/metrics")
        #expect(before.status == 200)
        #expect(before.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        var m = before.samples
        #expect(m[#"breakerd_breaker_state{breaker="pay",state="closed"}"#] == 1)
        #expect(m[#"breakerd_breaker_state{breaker="pay",state="open"}"#] == 0)
        #expect(m[#"breakerd_breaker_calls{breaker="pay"}"#] == 1)
        #expect(m[#"breakerd_acquires_total{breaker="pay",result="permit"}"#] == 1)
        #expect(m[#"breakerd_transitions_total{breaker="pay",from="closed",to="open"}"#] == nil)
        #expect(m["breakerd_store_up"] == 1)
        #expect((m["breakerd_open_connections"] ?? 0) >= 1)

        // Two failures: 1/3 failed, under min_calls: still closed, and the gauges say so.
        try await t.calls("pay", "FAILURE", count: 2, through: c)
        m = try await t.get("/metrics").samples
        #expect(m[#"breakerd_breaker_failure_rate{breaker="pay"}"#] == 0.6667)
        #expect(m[#"breakerd_breaker_calls{breaker="pay"}"#] == 3)

        // The third failure is the fourth call: its report opens the breaker (min_calls 4), which
        // clears its window; the next two acquires are denied.
        try await t.calls("pay", "FAILURE", count: 1, through: c)
        #expect(try await c.commandText("ACQUIRE", "pay").hasPrefix("DENY open"))
        #expect(try await c.commandText("ACQUIRE", "pay").hasPrefix("DENY open"))

        m = try await t.get("/metrics").samples
        #expect(m[#"breakerd_breaker_state{breaker="pay",state="open"}"#] == 1)
        #expect(m[#"breakerd_breaker_state{breaker="pay",state="closed"}"#] == 0)
        #expect(m[#"breakerd_breaker_calls{breaker="pay"}"#] == 0)
        #expect((m[#"breakerd_breaker_retry_after_seconds{breaker="pay"}"#] ?? 0) > 0)
        #expect(m[#"breakerd_transitions_total{breaker="pay",from="closed",to="open"}"#] == 1)
        #expect(m[#"breakerd_acquires_total{breaker="pay",result="permit"}"#] == 4)
        #expect(m[#"breakerd_acquires_total{breaker="pay",result="deny"}"#] == 2)
        #expect(m[#"breakerd_reports_total{breaker="pay",outcome="failure"}"#] == 3)
        #expect(m[#"breakerd_reports_total{breaker="pay",outcome="success"}"#] == 1)
        #expect(m[#"breakerd_replica_reports_total{replica="replica-1",outcome="failure"}"#] == 3)
        #expect(m[#"breakerd_replica_acquires_total{replica="replica-1",result="deny"}"#] == 2)
        #expect(m[#"breakerd_commands_total{command="acquire"}"#] == 6)
        #expect(m[#"breakerd_commands_total{command="report"}"#] == 4)
        #expect((m[#"breakerd_store_latency_seconds_count{operation="acquire"}"#] ?? 0) >= 6)
        #expect(m["breakerd_breakers"] == 1)
    }

    @Test func labelsChosenByClientsAreBounded() async throws {
        let t = try await HTTPTestServer.start()  // at most 2 replica names
        defer { Task { await t.stop() } }
        for name in ["r1", "r2", "r3", "r4"] {
            let c = try await t.connect()
            #expect(try await c.commandText("HELLO", "2", "SETNAME", name).contains("breakerd"))
            try await t.calls("bounded", "SUCCESS", count: 1, through: c)
        }
        let c = try await t.connect()
        _ = try await c.commandText("NOSUCHCOMMAND", "x")
        _ = try await c.commandText("ANOTHERONE")
        let m = try await t.get("/metrics").samples
        #expect(m[#"breakerd_replica_reports_total{replica="r1",outcome="success"}"#] == 1)
        #expect(m[#"breakerd_replica_reports_total{replica="r2",outcome="success"}"#] == 1)
        #expect(m[#"breakerd_replica_reports_total{replica="r3",outcome="success"}"#] == nil)
        #expect(m[#"breakerd_replica_reports_total{replica="other",outcome="success"}"#] == 2)
        #expect(m[#"breakerd_commands_total{command="other"}"#] == 2)
        #expect(!m.keys.contains { $0.contains("NOSUCHCOMMAND") || $0.contains("nosuchcommand") })
    }
}

@Suite struct APITests {
    @Test func breakersJSONHasEverySnapshotFieldAndHistory() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("json-a", "FAILURE", count: 4, through: c)
        try await t.calls("json-b", "SUCCESS", count: 2, through: c)
        let r = try await t.get("/api/breakers")
        #expect(r.status == 200)
        #expect(r.headers["content-type"] == "application/json")
        let doc = r.json
        #expect(doc["store"] as? String == "up")
        #expect(doc["total"] as? Int == 2)
        let breakers = try #require(doc["breakers"] as? [[String: Any]])
        #expect(breakers.map { $0["name"] as? String } == ["json-a", "json-b"])
        let a = breakers[0]
        #expect(a["state"] as? String == "open")
        #expect(a["mode"] as? String == "auto")
        // Opening clears the window; the figures behind the trip are in its history line.
        #expect(a["calls"] as? Int == 0)
        #expect((a["retry_after_ms"] as? Int ?? 0) > 0)
        #expect(a["window_ms"] as? Int == 30000)
        for key in ["mode_by", "mode_why", "mode_until", "slow", "slow_rate", "trials", "permits", "generation", "history"] {
            #expect(a[key] != nil, "missing \(key)")
        }
        let history = try #require(a["history"] as? [String])
        #expect(history.first?.hasPrefix("json-a closed->open gen=1 ") == true)
        #expect(history.first?.contains("reason=failure_rate failure_rate=1 threshold=0.5 calls=4 failures=4") == true, "\(history)")
        #expect(breakers[1]["calls"] as? Int == 2)
        #expect(breakers[1]["failure_rate"] as? Double == 0)
        #expect(breakers[1]["state"] as? String == "closed")
    }

    @Test func anythingElseIsRefused() async throws {
        let t = try await HTTPTestServer.start { $0.maxEventStreams = 1 }
        defer { Task { await t.stop() } }
        #expect(try await t.get("/nope").status == 404)
        let post = try await t.get("/metrics", method: "POST")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        #expect(try await t.get("/api/breakers", method: "DELETE").status == 405)
        let head = try await t.get("/healthz", method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty)
        let page = try await t.get("/")
        #expect(page.status == 200)
        #expect(page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        // Self-contained: nothing is loaded from another origin.
        // (SVG's namespace is a name, never fetched.)
        let body = page.body.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
        #expect(!body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"))

        // One event stream at a time here: the second is refused.
        let first = try await TestSocket.connect(port: t.httpPort)
        let opening = try await offPool { () -> String in
            try first.sendAll(Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            return String(decoding: try first.receive(), as: UTF8.self)
        }
        #expect(opening.hasPrefix("HTTP/1.1 200 OK") && opening.contains("text/event-stream"))
        #expect(try await t.get("/events").status == 503)
    }
}

@Suite struct HealthTests {
    @Test func healthzFailsWhileTheStoreIsDown() async throws {
        let redis = try await RedisServer.launch()
        defer { redis.stop() }
        let t = try await HTTPTestServer.start(endpoint: redis.endpoint, deadlineMs: 200)
        defer { Task { await t.stop() } }
        let up = try await t.get("/healthz")
        #expect(up.status == 200 && up.body == "ok\n")

        try await offPool { redis.kill() }
        let down = try await t.get("/healthz")
        #expect(down.status == 503)
        #expect(down.body.hasPrefix("store down"))
        #expect(try await t.get("/api/breakers").status == 503)
        let m = try await t.get("/metrics")
        #expect(m.status == 200)
        #expect(m.samples["breakerd_store_up"] == 0)
        #expect(m.samples["breakerd_fleet_read_ok"] == 0)

        try await redis.restart()
        var back = false
        for _ in 0..<50 where !back {
            back = try await t.get("/healthz").status == 200
            if !back { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(back)
    }
}

@Suite struct AuditTests {
    @Test func operatorActionsShowWhoWhyAndWhen() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.commandText("CLIENT", "SETNAME", "ops-alice") == "OK")
        let before = Int(Date().timeIntervalSince1970 * 1000) - 1000
        #expect(try await c.commandText("FORCE", "audited", "OPEN", "TTL", "60000", "REASON", "vendor", "outage", "#42") == "OK open mode=forced_open")
        let history = try await c.commandText("HISTORY", "audited").split(separator: "\n").map(String.init)
        let forced = try #require(history.first)
        #expect(forced.contains(" by=admin@127.0.0.1:"), "\(forced)")
        #expect(forced.contains("/ops-alice why=vendor outage #42"), "\(forced)")
        let at = forced.split(separator: " ").first { $0.hasPrefix("at=") }.flatMap { Int($0.dropFirst(3)) } ?? 0
        #expect(at >= before && at <= before + 60_000)

        #expect(try await c.commandText("CONFIG", "SET", "audited", "min_calls", "7", "REASON", "noisy", "dependency") == "OK")
        #expect(try await c.commandText("RESET", "audited", "REASON", "vendor", "fixed", "it") == "OK closed")
        #expect(try await c.commandText("CONFIG", "SET", "default", "min_calls", "9", "REASON", "fleet", "wide") == "OK")
        let latest = try await c.commandText("HISTORY", "audited", "2").split(separator: "\n").map(String.init)
        #expect(latest[0].contains("reason=reset") && latest[0].hasSuffix("/ops-alice why=vendor fixed it"), "\(latest)")
        #expect(latest[1].contains("min_calls=7") && latest[1].hasSuffix("/ops-alice why=noisy dependency"), "\(latest)")

        // The same trail through HTTP: the breaker's history, and the default policy's change.
        let doc = try await t.get("/api/breakers").json
        let b = try #require((doc["breakers"] as? [[String: Any]])?.first)
        #expect((b["history"] as? [String])?.first == latest[0])
        let defaults = try #require(doc["default_policy_changes"] as? [String])
        #expect(defaults.first?.contains("set=min_calls=9 by=admin@127.0.0.1:") == true, "\(defaults)")
        #expect(defaults.first?.hasSuffix("/ops-alice why=fleet wide") == true, "\(defaults)")
        _ = try await c.commandText("CONFIG", "SET", "default", "min_calls", "default")
    }

    @Test func forcedModeShowsByWhomWhyAndUntil() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        _ = try await c.commandText("CLIENT", "SETNAME", "ops-bob")
        _ = try await c.commandText("FORCE", "moded", "CLOSED", "TTL", "60000", "REASON", "maintenance")
        let doc = try await t.get("/api/breakers").json
        let b = try #require((doc["breakers"] as? [[String: Any]])?.first)
        #expect(b["mode"] as? String == "forced_closed")
        #expect((b["mode_by"] as? String)?.hasSuffix("/ops-bob") == true)
        #expect(b["mode_why"] as? String == "maintenance")
        #expect((b["mode_until"] as? Int ?? 0) > Int(Date().timeIntervalSince1970 * 1000))
    }
}
