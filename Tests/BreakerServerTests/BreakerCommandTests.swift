import BreakerServerTestSupport
import RESP
import Testing

/// Every breaker command's happy path and its errors, through a real server and Redis.
@Suite struct BreakerCommandTests {
    @Test func acquireReportAndState() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()

        let permit = try #require(try await c.command("ACQUIRE", "payments").text)
        let words = permit.split(separator: " ")
        #expect(words.count == 3 && words[0] == "PERMIT" && words[2] == "closed", "\(permit)")
        #expect(try await c.command("REPORT", "payments", String(words[1]), "SUCCESS") == .simpleString("OK closed"))

        let p2 = try #require(try await c.command("acquire", "payments").text).split(separator: " ")[1]
        #expect(try await c.command("REPORT", "payments", String(p2), "failure", "LATENCY", "12") == .simpleString("OK closed"))

        let state = try #require(try await c.command("STATE", "payments").text)
        #expect(state.hasPrefix("payments closed mode=auto gen="), "\(state)")
        #expect(state.contains(" calls=2 failures=1 "), "\(state)")
        #expect(state.contains(" trials=0/1 retry_after_ms=0"), "\(state)")
    }

    @Test func failuresTripTheBreakerAndDeny() async throws {
        let logs = LogCapture()
        // Open for a minute: a loaded machine must not let the breaker reach half-open before the check.
        let t = try await TestServer.start(policy: TestServer.policy(openMs: 60_000), logs: logs)
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        for _ in 0..<4 {
            let p = try #require(try await c.command("ACQUIRE", "db").text).split(separator: " ")[1]
            _ = try await c.command("REPORT", "db", String(p), "FAILURE")
        }
        let deny = try #require(try await c.command("ACQUIRE", "db").text)
        #expect(deny.hasPrefix("DENY open "), "\(deny)")
        let history = try #require(try await c.command("HISTORY", "db").elements)
        #expect(history.count == 1)
        #expect(history.first?.text?.hasPrefix("db closed->open gen=1 at=") == true, "\(history)")
        #expect(logs.contains("notice transition", "breaker=db", "event=db closed->open gen=1"), "\(logs.all)")
        #expect(try await c.command("HISTORY", "db", "0") == .error("ERR the count must be a whole number from 1 to 10000, got '0'"))
    }

    @Test func listConfigForceAndReset() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        _ = try await c.command("ACQUIRE", "a.one")
        _ = try await c.command("ACQUIRE", "a.two")
        _ = try await c.command("ACQUIRE", "b.one")
        let all = try #require(try await c.command("LIST").elements).compactMap(\.text)
        #expect(all.map { $0.split(separator: " ")[0] } == ["a.one", "a.two", "b.one"])
        let some = try #require(try await c.command("LIST", "a.*").elements).compactMap(\.text)
        #expect(some.count == 2)

        let config = try #require(try await c.command("CONFIG", "GET", "a.one").text)
        #expect(config.hasPrefix("window_ms=30000 buckets=10 failure_rate=0.5 min_calls=4 "), "\(config)")
        #expect(try await c.command("CONFIG", "SET", "a.one", "min_calls", "7") == .simpleString("OK"))
        #expect(try await c.command("CONFIG", "GET", "a.one").text?.contains(" min_calls=7 ") == true)
        #expect(try await c.command("CONFIG", "SET", "default", "open_ms", "400", "max_open_ms", "400") == .simpleString("OK"))
        #expect(try await c.command("CONFIG", "GET", "default").text?.contains(" open_ms=400 ") == true)
        let bad = try #require(try await c.command("CONFIG", "SET", "a.one", "min_calls", "zero").text)
        #expect(bad.hasPrefix("ERR min_calls=zero must be"), "\(bad)")
        let unknownKey = try #require(try await c.command("CONFIG", "SET", "a.one", "colour", "red").text)
        #expect(unknownKey.hasPrefix("ERR colour is not a policy key"), "\(unknownKey)")
        #expect(try await c.command("CONFIG", "SET", "a.one", "min_calls") == .error("ERR CONFIG SET needs a breaker (or default) and key value pairs"))
        #expect(try await c.command("CONFIG", "RESETSTAT") == .error("ERR unknown subcommand 'RESETSTAT'. Try CONFIG GET or CONFIG SET."))

        #expect(try await c.command("FORCE", "a.one", "OPEN", "TTL", "60000", "REASON", "deploy", "in", "progress") == .simpleString("OK open mode=forced_open"))
        #expect(try await c.command("ACQUIRE", "a.one").text?.hasPrefix("DENY ") == true)
        let forced = try #require(try await c.command("STATE", "a.one").text)
        #expect(forced.contains("mode=forced_open"), "\(forced)")
        #expect(forced.contains(" mode_by=admin@127.0.0.1:"), "\(forced)")
        #expect(forced.contains(" mode_until="), "\(forced)")
        #expect(try await c.command("FORCE", "a.one", "SIDEWAYS") == .error("ERR unknown mode 'SIDEWAYS': expected OPEN, CLOSED, METRICS_ONLY or AUTO"))
        #expect(try await c.command("FORCE", "a.one", "OPEN", "TTL", "-5") == .error("ERR TTL must be a whole number of milliseconds > 0, got '-5'"))
        #expect(try await c.command("RESET", "a.one") == .simpleString("OK closed"))
        #expect(try await c.command("ACQUIRE", "a.one").text?.hasPrefix("PERMIT ") == true)
    }

    @Test func badArgumentsAnswerAnErrorAndTheConnectionGoesOn() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.command("ACQUIRE") == .error("ERR wrong number of arguments for 'acquire' command"))
        #expect(try await c.command("ACQUIRE", "a", "b") == .error("ERR wrong number of arguments for 'acquire' command"))
        #expect(try await c.command("ACQUIRE", "bad name") == .error("ERR invalid breaker name 'bad name': it may hold only letters, digits and . _ : / -"))
        #expect(try await c.command("REPORT", "x", "1", "MAYBE") == .error("ERR unknown outcome 'MAYBE': expected SUCCESS, FAILURE or IGNORE"))
        #expect(try await c.command("REPORT", "x", "1", "SUCCESS", "LATENCY", "soon") == .error("ERR LATENCY must be a whole number of milliseconds >= 0, got 'soon'"))
        #expect(try await c.command("REPORT", "x", "1", "SUCCESS", "SPEED", "3") == .error("ERR syntax error: expected LATENCY <ms> after the outcome, got 'SPEED'"))
        #expect(try await c.command("REPORT", "x", "999.999", "SUCCESS") == .error("ERR unknown permit '999.999' for breaker 'x'"))
        #expect(try await c.command("STATE") == .error("ERR wrong number of arguments for 'state' command"))
        #expect(try await c.command("FROB", "a", "b") == .error("ERR unknown command 'FROB', with args beginning with: 'a' 'b' "))
        #expect(try await c.command("ACQUIRE", "still-fine").text?.hasPrefix("PERMIT ") == true)
    }

    @Test func resetAloneIsRedisConnectionReset() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        _ = try await c.command("HELLO", "3", "SETNAME", "n1")
        _ = try await c.command("SUBSCRIBE", "breakers")
        #expect(try await c.command("RESET") == .simpleString("RESET"))
        #expect(try await c.command("CLIENT", "GETNAME") == .bulk(nil as String?))
        #expect(try await c.command("HELLO").elements?[5] == .integer(2))
    }

    @Test func reportSaysWhenItsOutcomeCountedNothing() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        let permit = String(try #require(try await c.command("ACQUIRE", "words").text).split(separator: " ")[1])
        #expect(try await c.command("REPORT", "words", permit, "SUCCESS") == .simpleString("OK closed"))
        // A second report of the same permit.
        #expect(try await c.command("REPORT", "words", permit, "SUCCESS") == .simpleString("OK closed expired"))
        // A permit of an earlier generation: the breaker was reset since.
        let old = String(try #require(try await c.command("ACQUIRE", "words").text).split(separator: " ")[1])
        #expect(try await c.command("RESET", "words").text?.hasPrefix("OK closed") == true)
        #expect(try await c.command("REPORT", "words", old, "FAILURE") == .simpleString("OK closed stale"))
    }
}
