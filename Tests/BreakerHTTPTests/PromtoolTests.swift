import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Testing

/// Debian's promtool (scripts/setup installs the prometheus package).
enum Promtool {
    static var path: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = "\(dir)/promtool"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
        let path = try #require(path, "promtool is not installed: run scripts/setup")
        return try await runProcess(path, arguments, input: input, timeoutSeconds: 60)
    }
}

/// The repository's root, for the files under deploy/.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct PromtoolMetricsTests {
    /// A scrape with every family present (counters, histograms, fleet gauges, process figures)
    /// passes promtool's own lint with nothing to say.
    @Test func aRealScrapePassesPromtoolCheckMetrics() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.commandText("CLIENT", "SETNAME", "replica-lint") == "OK")
        let permit = try await c.commandText("ACQUIRE", "lint").split(separator: " ")[1]
        #expect(try await c.commandText("REPORT", "lint", String(permit), "SUCCESS", "LATENCY", "120") == "OK closed")
        try await t.calls("lint", "FAILURE", count: 4, through: c)
        #expect(try await c.commandText("ACQUIRE", "lint").hasPrefix("DENY open"))
        _ = try await t.get("/nope", headers: [])

        let scrape = try await t.get("/metrics")
        #expect(scrape.status == 200)
        let m = scrape.samples
        // Something of every kind is there to be checked.
        #expect(m[#"breakerd_build_info{version="0.1.0"}"#] == 1, "\(scrape.body.prefix(400))")
        #expect((m["process_resident_memory_bytes"] ?? 0) > 1_000_000)
        #expect((m["process_open_fds"] ?? 0) > 3)
        #expect((m["process_cpu_seconds_total"] ?? 0) > 0)
        let start = m["process_start_time_seconds"] ?? 0
        #expect(abs(start - Date().timeIntervalSince1970) < 24 * 3600, "start time \(start)")
        #expect(m[#"breakerd_transitions_total{breaker="lint",from="closed",to="open"}"#] == 1)
        #expect((m[#"breakerd_store_latency_seconds_count{operation="acquire"}"#] ?? 0) >= 5)

        let lint = try await Promtool.run(["check", "metrics"], input: scrape.body)
        #expect(lint.status == 0, "promtool: \(lint.output) \(lint.error)")
        #expect(lint.output.isEmpty && lint.error.isEmpty, "promtool: \(lint.output) \(lint.error)")
        // Every family has a HELP line, not only the ones promtool happens to check.
        let families = Set(scrape.body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(scrape.body.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(families.subtracting(helped).isEmpty, "no HELP: \(families.subtracting(helped).sorted())")
        #expect(families.count >= 25, "\(families.sorted())")
        // A HELP may name only flags breakerd has.
        #expect(!scrape.body.contains("--http-max-breakers"))
    }

    /// The lint is real: a family without HELP fails it (so the test above can fail).
    @Test func promtoolRefusesAFamilyWithoutHelp() async throws {
        let lint = try await Promtool.run(["check", "metrics"], input: "# TYPE breakerd_x_total counter\nbreakerd_x_total 1\n")
        #expect(lint.status != 0)
        #expect((lint.output + lint.error).contains("no help text"), "\(lint.output) \(lint.error)")
    }

    /// Latencies replicas report land in a per-breaker histogram in seconds.
    @Test func reportedLatenciesAreAHistogramInSeconds() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        for ms in ["3", "120", "120", "4000"] {
            let permit = try await c.commandText("ACQUIRE", "lat").split(separator: " ")[1]
            #expect(try await c.commandText("REPORT", "lat", String(permit), "SUCCESS", "LATENCY", ms) == "OK closed")
        }
        // A report without a latency counts as a report and not in the histogram.
        try await t.calls("lat", "SUCCESS", count: 1, through: c)
        let m = try await t.get("/metrics").samples
        #expect(m[#"breakerd_reports_total{breaker="lat",outcome="success"}"#] == 5)
        #expect(m[#"breakerd_call_latency_seconds_count{breaker="lat"}"#] == 4)
        #expect(abs((m[#"breakerd_call_latency_seconds_sum{breaker="lat"}"#] ?? 0) - 4.243) < 1e-6)
        #expect(m[#"breakerd_call_latency_seconds_bucket{breaker="lat",le="0.002"}"#] == 0)
        #expect(m[#"breakerd_call_latency_seconds_bucket{breaker="lat",le="0.005"}"#] == 1)
        #expect(m[#"breakerd_call_latency_seconds_bucket{breaker="lat",le="0.1"}"#] == 1)
        #expect(m[#"breakerd_call_latency_seconds_bucket{breaker="lat",le="0.25"}"#] == 3)
        #expect(m[#"breakerd_call_latency_seconds_bucket{breaker="lat",le="5.0"}"#] == 4)
        #expect(m[#"breakerd_call_latency_seconds_bucket{breaker="lat",le="+Inf"}"#] == 4)
    }

    /// Once the open time is over the gauge says half-open, with no call made in between: Redis
    /// keeps `open` until the next acquire, the scrape reads the time left. Every scrape while time
    /// is left says open; the first without says half-open. (A real expiry: scripts/test runs it
    /// among the timed tests.)
    @Test(.timeLimit(.minutes(1))) func theStateGaugeLeavesOpenWhenTheOpenTimeEnds() async throws {
        let t = try await HTTPTestServer.start(policy: TestServer.policy(openMs: 3000))
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("expiring", "FAILURE", count: 4, through: c)
        var m = try await t.get("/metrics").samples
        #expect(m[#"breakerd_transitions_total{breaker="expiring",from="closed",to="open"}"#] == 1)
        let acquires = m[#"breakerd_commands_total{command="acquire"}"#]

        let state = #"breakerd_breaker_state{breaker="expiring",state="#
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(30))
        while clock.now < deadline {
            m = try await t.get("/metrics").samples
            let left = try #require(m[#"breakerd_breaker_retry_after_seconds{breaker="expiring"}"#])
            if left > 0 {
                #expect(m[state + #""open"}"#] == 1 && m[state + #""half_open"}"#] == 0, "\(left) s left")
            } else {
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(m[state + #""half_open"}"#] == 1)
        #expect(m[state + #""open"}"#] == 0)
        #expect(m[state + #""closed"}"#] == 0)
        #expect(m[#"breakerd_commands_total{command="acquire"}"#] == acquires, "no call moved it")
        let doc = try await t.get("/api/breakers").json
        let b = try #require((doc["breakers"] as? [[String: Any]])?.first)
        #expect(b["state"] as? String == "open")
        #expect(b["effective_state"] as? String == "half_open")
    }
}
