import Foundation
import RedisTestSupport
import Testing

/// The status page in a real headless Chromium: it shows the breakers, and when one trips it shows
/// that, from its event stream, with no reload.
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
    }

    /// Evaluates `expression` until `done` holds for its value (10 s at most); returns the last value.
    private func waitFor(_ page: DevToolsPage, _ expression: String, _ done: (String) -> Bool) async throws -> String {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(10))
        var value = ""
        while clock.now < deadline {
            value = try await page.evaluate(expression)
            if done(value) { return value }
            try await Task.sleep(for: .milliseconds(100))
        }
        return value
    }
}
