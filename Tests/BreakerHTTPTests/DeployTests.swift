import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Synchronization
import Testing

/// What deploy/ ships: Prometheus's alerting rules (checked and unit-tested by promtool), an
/// example Prometheus configuration, and a Grafana dashboard whose every query names metrics
/// breakerd really exports.
@Suite struct DeployTests {
    static let rules = repositoryRoot.appendingPathComponent("deploy/prometheus/breakerd.rules.yml")
    static let ruleTests = repositoryRoot.appendingPathComponent("deploy/prometheus/breakerd.rules.test.yml")
    static let exampleConfig = repositoryRoot.appendingPathComponent("deploy/prometheus/prometheus.yml")
    static let dashboard = repositoryRoot.appendingPathComponent("deploy/grafana/breakerd-dashboard.json")

    @Test func theRulesPassPromtoolCheckAndTheirUnitTests() async throws {
        let check = try await Promtool.run(["check", "rules", Self.rules.path])
        #expect(check.status == 0, "\(check.output) \(check.error)")
        #expect(check.output.contains("SUCCESS: 6 rules found"), "\(check.output)")
        #expect(!(check.output + check.error).contains("WARNING"), "\(check.output) \(check.error)")
        let unit = try await Promtool.run(["test", "rules", Self.ruleTests.path])
        #expect(unit.status == 0, "\(unit.output) \(unit.error)")
        #expect(unit.output.contains("SUCCESS"), "\(unit.output)")
        let config = try await Promtool.run(["check", "config", Self.exampleConfig.path])
        #expect(config.status == 0, "\(config.output) \(config.error)")
    }

    /// The unit tests bite: a rule that would fire a minute late fails them.
    @Test func theRuleTestsFailAChangedRule() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let changed = try String(contentsOf: Self.rules, encoding: .utf8).replacingOccurrences(of: "for: 5m", with: "for: 6m")
        try changed.write(to: dir.appendingPathComponent("breakerd.rules.yml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Self.ruleTests, to: dir.appendingPathComponent("breakerd.rules.test.yml"))
        let unit = try await Promtool.run(["test", "rules", dir.appendingPathComponent("breakerd.rules.test.yml").path])
        #expect(unit.status != 0)
        #expect(unit.error.contains("BreakerdBreakerOpen") || unit.output.contains("BreakerdBreakerOpen"), "\(unit.output) \(unit.error)")
    }

    /// Every metric the dashboard and the rules name is one breakerd exports (after a trip, with
    /// reported latencies), except the suspect-reporter counter that quorum trips will bring.
    @Test func theDashboardAndRulesNameOnlyMetricsBreakerdExports() async throws {
        let data = try Data(contentsOf: Self.dashboard)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["uid"] as? String == "breakerd-overview")
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let titles = panels.compactMap { $0["title"] as? String }
        for wanted in ["State over time", "Calls / s", "Denies / s", "Failure rate", "Slow-call rate", "Call latency (reported by replicas)"] {
            #expect(titles.contains(wanted), "\(titles)")
        }
        let expressions = Self.dashboardExpressions(dashboard)
        #expect(expressions.count >= 15)

        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.commandText("CLIENT", "SETNAME", "replica-d") == "OK")
        let permit = try await c.commandText("ACQUIRE", "dash").split(separator: " ")[1]
        _ = try await c.commandText("REPORT", "dash", String(permit), "SUCCESS", "LATENCY", "12")
        try await t.calls("dash", "FAILURE", count: 4, through: c)
        _ = try await c.commandText("ACQUIRE", "dash")
        let exported = Set(try await t.get("/metrics").samples.keys.map { String($0.prefix { $0 != "{" }) })

        let rules = try String(contentsOf: Self.rules, encoding: .utf8)
        let named = Self.metricNames(in: expressions.joined(separator: "\n") + "\n" + rules)
        #expect(named.count >= 12, "\(named.sorted())")
        let missing = named.subtracting(exported).subtracting(["breakerd_suspect_events_total"])
        #expect(missing.isEmpty, "not exported: \(missing.sorted())")
    }

    static func dashboardExpressions(_ dashboard: [String: Any]) -> [String] {
        var out: [String] = []
        for panel in dashboard["panels"] as? [[String: Any]] ?? [] {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                if let e = target["expr"] as? String { out.append(e) }
            }
        }
        for a in (dashboard["annotations"] as? [String: Any])?["list"] as? [[String: Any]] ?? [] {
            if let e = a["expr"] as? String { out.append(e) }
        }
        return out
    }

    static func metricNames(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: #"\b(breakerd_[a-z_]*[a-z]|process_[a-z_]*[a-z])\b"#)
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
            .subtracting(["breakerd_breaker", "breakerd_overview"])
    }
}

/// A real Prometheus (Debian's) scraping an in-process breakerd on loopback with the shipped rules,
/// through the lock: the HTTP endpoint has a token, and Prometheus scrapes with `--metrics-token`'s.
@Suite struct RealPrometheusTests {
    @Test(.timeLimit(.minutes(3))) func aTripFiresTheOpenAlertInARealPrometheus() async throws {
        let t = try await HTTPTestServer.start(policy: TestServer.policy(openMs: 120_000)) {
            $0.token = "prom-test-http-token"
            $0.metricsToken = "prom-test-scrape-token"
        }
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("prom-payments", "SUCCESS", count: 2, through: c)
        try await t.calls("prom-search", "SUCCESS", count: 2, through: c)

        let prometheus = try await RealPrometheus.start(scraping: t.httpPort, bearer: "prom-test-scrape-token")
        // Stopped before the test ends, failed or not, rather than by a defer's task, which may not
        // run before the test process exits and would leave Prometheus running.
        do {
            // The target is scraped and the breakers seen, closed, before anything trips.
            let seen = try await prometheus.waitFor("the breakers scraped") {
                let r = try await prometheus.query(#"breakerd_breaker_state{state="closed"}"#)
                return r.contains("prom-payments") && r.contains("prom-search") ? r : nil
            }
            #expect(seen.contains(#""job":"breakerd""#), "\(seen)")
            let up = try await prometheus.query(#"up{job="breakerd"} == 1"#)
            #expect(up.contains(#""instance":"127.0.0.1:\#(t.httpPort)""#), "scraped through the lock: \(up)")
            #expect(try await prometheus.get("/api/v1/alerts").body.contains("BreakerdBreakerOpen") == false)

            try await t.calls("prom-payments", "FAILURE", count: 4, through: c)
            #expect(try await c.commandText("ACQUIRE", "prom-payments").hasPrefix("DENY open"))

            let firing = try await prometheus.waitFor("BreakerdBreakerOpen firing") { () -> [String: Any]? in
                let body = try await prometheus.get("/api/v1/alerts").body
                let doc = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
                let alerts = (doc?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
                return alerts.first {
                    ($0["labels"] as? [String: String])?["alertname"] == "BreakerdBreakerOpen" && $0["state"] as? String == "firing"
                }
            }
            let labels = try #require(firing["labels"] as? [String: String])
            #expect(labels["breaker"] == "prom-payments")
            #expect(labels["severity"] == "warning")
            #expect((firing["annotations"] as? [String: String])?["summary"] == "Breaker prom-payments has not been closed for 5 minutes")
            // Only the tripped breaker, and nothing about the store, which is up.
            let all = try await prometheus.get("/api/v1/alerts").body
            #expect(!all.contains(#""breaker":"prom-search""#), "\(all)")
            #expect(!all.contains("BreakerdStoreDown") && !all.contains("BreakerdDown"), "\(all)")

            // Every dashboard query parses and runs in this Prometheus.
            let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: DeployTests.dashboard)) as? [String: Any] ?? [:]
            for expression in DeployTests.dashboardExpressions(dashboard) {
                let e = expression.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$breaker", with: ".*")
                let r = try await prometheus.query(e)
                #expect(r.contains(#""status":"success""#), "\(e): \(r)")
            }
            let open = try await prometheus.query(#"count(max by (breaker) (breakerd_breaker_state{state="open",breaker=~".*"}) == 1) or vector(0)"#)
            #expect(open.contains(#","1"]"#), "\(open)")
        } catch {
            await prometheus.stop()
            throw error
        }
        await prometheus.stop()
    }
}

/// Debian's prometheus on a free loopback port, with a configuration made for the test: 1 s
/// scrapes and evaluations, and the shipped rules with every `for:` cut to 1 s (the expressions
/// are the shipped ones; their `for:` durations are what `promtool test rules` checks).
final class RealPrometheus: @unchecked Sendable {
    private let process: Process
    private let directory: URL
    private let stopped = Atomic<Bool>(false)
    let port: Int

    private init(process: Process, directory: URL, port: Int) {
        self.process = process
        self.directory = directory
        self.port = port
    }

    /// `bearer`: the token the scrape job sends, as deploy/prometheus/prometheus.yml shows.
    static func start(scraping target: Int, bearer: String? = nil) async throws -> RealPrometheus {
        let binary = try #require(
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/prometheus" }
                .first { FileManager.default.isExecutableFile(atPath: $0) }, "prometheus is not installed: run scripts/setup")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("breakerd-prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let shipped = try String(contentsOf: DeployTests.rules, encoding: .utf8)
        let rules = shipped.replacingOccurrences(of: #"for: \d+[smh]"#, with: "for: 1s", options: .regularExpression)
        #expect(rules != shipped)
        try rules.write(to: directory.appendingPathComponent("rules.yml"), atomically: true, encoding: .utf8)
        let config = """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            rule_files: [rules.yml]
            scrape_configs:
              - job_name: breakerd
            \(bearer.map { "    authorization: {type: Bearer, credentials: \($0)}\n" } ?? "")\
                static_configs:
                  - targets: ["127.0.0.1:\(target)"]
            """
        try config.write(to: directory.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        // A free port can be taken between the probe and the bind: try again with another.
        var lastLog = ""
        for _ in 0..<3 {
            let port = try RedisServer.freePort()
            let log = directory.appendingPathComponent("prometheus-\(port).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.currentDirectoryURL = directory
            p.arguments = [
                "--config.file=\(directory.appendingPathComponent("prometheus.yml").path)",
                "--storage.tsdb.path=\(directory.appendingPathComponent("data-\(port)").path)",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            ]
            let handle = try FileHandle(forWritingTo: log)
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            let candidate = RealPrometheus(process: p, directory: directory, port: port)
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(60))
            while clock.now < deadline && p.isRunning {
                if let r = try? await candidate.get("/-/ready"), r.status == 200 { return candidate }
                try await Task.sleep(for: .milliseconds(100))
            }
            lastLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            await candidate.stop(removing: false)
        }
        try? FileManager.default.removeItem(at: directory)
        throw TestRedisError("prometheus did not become ready: \(lastLog.suffix(2000))")
    }

    func get(_ path: String) async throws -> HTTPTestResponse {
        try await HTTPTestResponse.fetch(port: port, path: path)
    }

    /// An instant query's whole JSON answer.
    func query(_ expression: String) async throws -> String {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        return try await get("/api/v1/query?query=\(encoded)").body
    }

    /// Polls `probe` until it gives a value (60 s at most: Prometheus on a loaded machine).
    func waitFor<T>(_ what: String, _ probe: () async throws -> T?) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(60))
        while clock.now < deadline {
            if let v = try await probe() { return v }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestRedisError("gave up waiting for \(what); alerts: \((try? await get("/api/v1/alerts").body) ?? "?")")
    }

    /// Stops it (once, however often called) and removes its files.
    func stop(removing: Bool = true) async {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        _ = try? await offPool {
            if self.process.isRunning { self.process.terminate() }
            let deadline = Date().addingTimeInterval(10)
            while self.process.isRunning && Date() < deadline { usleep(20_000) }
            if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
            self.process.waitUntilExit()
            if removing { try? FileManager.default.removeItem(at: self.directory) }
        }
    }
}
