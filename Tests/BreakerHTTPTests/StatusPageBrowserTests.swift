import BreakerServerTestSupport
import Foundation
import RedisTestSupport
import Testing

/// The status page in a real headless Chromium: it shows the breakers, and when one trips it shows
/// that, from its event stream, with no reload. Each test closes its browser itself as well as in
/// its defer: a task started by a defer may not run before the test process exits, and would leave
/// the browser and its profile behind.
@Suite struct StatusPageBrowserTests {
    @Test(.timeLimit(.minutes(2))) func thePageShowsTheBreakersAndFollowsATripLive() async throws {
        let t = try await HTTPTestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("web-payments", "SUCCESS", count: 2, through: c)
        try await t.calls("web-search", "SUCCESS", count: 1, through: c)

        let url = "http://127.0.0.1:\(t.httpPort)/"
        let browser = try await HeadlessChromium.open(url)
        defer { Task { await browser.close() } }
        let page = try await browser.page(url)

        let cards = """
            JSON.stringify({live: document.body.dataset.live || "", cards: [...document.querySelectorAll("article[data-breaker]")]
              .map(a => a.dataset.breaker + "=" + a.dataset.state + ":" + a.querySelector(".state").textContent)})
            """
        let shown = try await waitFor(page, cards) { $0.contains(#""live":"1""#) && $0.contains("web-search") }
        #expect(shown.contains("web-payments=closed:closed"), "\(shown)")
        #expect(shown.contains("web-search=closed:closed"), "\(shown)")

        // A mark on this very document: a reload would lose it.
        _ = try await page.evaluate("window.__sameDocument = 'yes'")
        let loads = try await t.get("/metrics").samples

        try await t.calls("web-payments", "FAILURE", count: 4, through: c)
        let tripped = try await waitFor(page, cards) { $0.contains("web-payments=open:open") }
        #expect(tripped.contains("web-search=closed:closed"), "\(tripped)")
        #expect(try await page.evaluate("window.__sameDocument") == "yes")
        let events = try await page.evaluate("document.querySelector('#events li[data-event]')?.dataset.event || ''")
        #expect(events.hasPrefix("web-payments closed->open"), "\(events)")
        let text = try await page.evaluate("document.querySelector('article[data-breaker=\"web-payments\"]').innerText")
        #expect(text.contains("closed → open") && text.contains("trial allowed in"), "\(text)")
        #expect(loads["breakerd_http_event_streams"] == 1)
        await browser.close()
    }

    static let cardsAndBanner = """
        JSON.stringify({live: document.body.dataset.live || "", stale: document.body.dataset.stale || "",
          banner: document.querySelector("#banner").textContent, main: document.querySelector("#breakers").innerText.slice(0, 300),
          cards: [...document.querySelectorAll("article[data-breaker]")].map(a => a.dataset.breaker + "=" + a.dataset.state)})
        """

    /// Trends as small charts, and a tripped breaker showing the figures that opened it (its
    /// window, cleared at the trip, says 0 calls).
    @Test(.timeLimit(.minutes(2))) func thePageShowsTrendsAndWhyABreakerOpened() async throws {
        let t = try await HTTPTestServer.start { $0.sampleInterval = .milliseconds(150) }
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("trend-payments", "SUCCESS", count: 3, through: c)
        try await t.calls("trend-search", "SUCCESS", count: 5, through: c)
        try await t.calls("trend-search", "FAILURE", count: 1, through: c)
        let url = "http://127.0.0.1:\(t.httpPort)/"
        let browser = try await HeadlessChromium.open(url)
        defer { Task { await browser.close() } }
        let page = try await browser.page(url)
        _ = try await waitFor(page, Self.cardsAndBanner) { $0.contains(#""live":"1""#) && $0.contains("trend-search") }

        // Trip it (3 successes, then failures until the window holds 50% of at least 4), and let
        // a few denies through.
        try await t.calls("trend-payments", "FAILURE", count: 3, through: c)
        for _ in 0..<3 { #expect(try await c.commandText("ACQUIRE", "trend-payments").hasPrefix("DENY open")) }
        let json = try await t.get("/api/breakers").json
        let b = try #require((json["breakers"] as? [[String: Any]])?.first { $0["name"] as? String == "trend-payments" })
        #expect(b["calls"] as? Int == 0, "the window is cleared at a trip")
        let opened = try #require(b["opened_by"] as? [String: Any])
        #expect(opened["reason"] as? String == "failure_rate")
        #expect(opened["calls"] as? Int == 6 && opened["failures"] as? Int == 3, "\(opened)")
        #expect(opened["failure_rate"] as? Double == 0.5)

        let card = #"document.querySelector('article[data-breaker="trend-payments"]')"#
        let shown = try await waitFor(
            page,
            "JSON.stringify({state: \(card).dataset.state, text: \(card).innerText, samples: +\(card).querySelector('[data-samples]').dataset.samples, denies: \(card).querySelector('.chart.denies b').textContent})"
        ) { $0.contains(#""state":"open""#) && $0.contains(#""denies":"3""#) }
        #expect(shown.contains("failure rate at trip") && shown.contains("50%") && shown.contains("calls at trip"), "\(shown)")
        #expect(shown.contains("over 6 calls (3 failed)"), "\(shown)")
        let charts = try await page.evaluate("JSON.stringify([...\(card).querySelectorAll('svg.spark')].map(s => s.dataset.points))")
        #expect(charts.hasPrefix("[\"") && !charts.contains(#""0""#) && !charts.contains(#""1""#), "charts with points: \(charts)")
        // The other breaker's failure-rate chart shows its 1 in 6.
        let search = try await page.evaluate(#"document.querySelector('article[data-breaker="trend-search"] .chart.rate b').textContent"#)
        #expect(search == "16.7%", "\(search)")

        let shots = repositoryRoot.appendingPathComponent(".build/screenshots")
        let phone = try await page.screenshot(width: 390, height: 1100, to: shots.appendingPathComponent("status-page-trip-phone.png"))
        let desk = try await page.screenshot(width: 1280, height: 900, to: shots.appendingPathComponent("status-page-trip-desk.png"))
        for png in [phone, desk] { #expect(png.starts(with: [0x89, 0x50, 0x4e, 0x47]) && png.count > 10_000, "\(png.count) bytes") }
        await browser.close()
    }

    /// Redis down: the page keeps the last known state and says so, and a page loaded during the
    /// outage shows breakerd's last known state, not "Loading breakers…".
    @Test(.timeLimit(.minutes(2))) func whileRedisIsDownThePageShowsTheLastKnownState() async throws {
        let redis = try await RedisServer.launch()
        defer { redis.stop() }
        // The default deadline: a killed Redis refuses at once, and a short one turned a call degraded
        // (not counted, so no trip) when the parallel pass stalled the machine.
        let t = try await HTTPTestServer.start(endpoint: redis.endpoint) { $0.sampleInterval = .milliseconds(200) }
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("down-payments", "FAILURE", count: 4, through: c)
        try await t.calls("down-search", "SUCCESS", count: 2, through: c)
        let url = "http://127.0.0.1:\(t.httpPort)/"
        let browser = try await HeadlessChromium.open(url)
        defer { Task { await browser.close() } }
        let page = try await browser.page(url)
        let up = try await waitFor(page, Self.cardsAndBanner) { $0.contains(#""live":"1""#) && $0.contains("down-search") }
        #expect(up.contains(#""stale":"0""#) && up.contains("down-payments=open"), "\(up)")

        try await offPool { redis.kill() }
        _ = try await page.evaluate("refresh()")
        let down = try await waitFor(page, Self.cardsAndBanner, seconds: 30) { $0.contains(#""stale":"1""#) }
        #expect(down.contains("Redis is unreachable: showing the last known state, read at"), "\(down)")
        #expect(down.contains("down-payments=open") && down.contains("down-search=closed"), "\(down)")
        let store = try await page.evaluate("document.querySelector('#store').textContent")
        #expect(store.hasPrefix("store down"), "\(store)")
        let shots = repositoryRoot.appendingPathComponent(".build/screenshots")
        try await page.screenshot(width: 390, height: 900, to: shots.appendingPathComponent("status-page-redis-down.png"))

        // A fresh load while Redis is still down.
        _ = try await page.evaluate("location.reload(), 'reloading'")
        let reloaded = try await waitFor(page, Self.cardsAndBanner, seconds: 30) {
            $0.contains(#""stale":"1""#) && $0.contains("down-search=")
        }
        #expect(!reloaded.contains("Loading breakers"), "\(reloaded)")
        #expect(reloaded.contains("down-payments=open"), "\(reloaded)")

        try await redis.restart()
        // The restarted Redis is empty (no persistence here): the page says so, banner gone.
        let back = try await waitFor(page, Self.cardsAndBanner, seconds: 30) { $0.contains(#""stale":"0""#) }
        #expect(back.contains("No breakers in Redis yet"), "\(back)")
        await browser.close()
    }

    /// With the lock on, a browser let in by basic auth gets the page, and the page's own fetch and
    /// EventSource calls carry the same credentials.
    @Test(.timeLimit(.minutes(2))) func aLockedPageWorksInTheBrowserWithBasicAuth() async throws {
        let t = try await HTTPTestServer.start {
            $0.token = "page-token-5521"
            $0.adminPassword = "page-admin-pw"
        }
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        try await t.calls("locked-payments", "SUCCESS", count: 1, through: c)
        let url = "http://admin:page-admin-pw@127.0.0.1:\(t.httpPort)/"
        let browser = try await HeadlessChromium.open(url)
        defer { Task { await browser.close() } }
        let page = try await browser.page(url)
        let shown = try await waitFor(page, Self.cardsAndBanner) { $0.contains(#""live":"1""#) && $0.contains("locked-payments") }
        #expect(shown.contains("locked-payments=closed"), "\(shown)")
        try await t.calls("locked-payments", "FAILURE", count: 4, through: c)
        _ = try await waitFor(page, Self.cardsAndBanner) { $0.contains("locked-payments=open") }
        let m = try await t.get("/metrics", headers: ["Authorization: Bearer page-token-5521"]).samples
        #expect(m["breakerd_http_event_streams"] == 1)
        await browser.close()
    }

    /// Evaluates `expression` until `done` holds for its value (`seconds` at most: Chromium on a
    /// loaded machine); returns the last value.
    private func waitFor(
        _ page: DevToolsPage, _ expression: String, seconds: Int = 20, _ done: (String) -> Bool
    ) async throws -> String {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(seconds))
        var value = ""
        while clock.now < deadline {
            value = try await page.evaluate(expression)
            if done(value) { return value }
            try await Task.sleep(for: .milliseconds(100))
        }
        return value
    }
}
