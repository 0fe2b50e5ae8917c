import BreakerCore
import Testing

@Suite struct BreakerPolicyTests {
    @Test func defaultsAreTheDocumentedOnes() {
        let p = BreakerPolicy()
        #expect(p.values.map { "\($0.key)=\($0.value)" } == [
            "window_ms=30000", "buckets=10", "failure_rate=0.5", "min_calls=20", "slow_call_ms=0",
            "slow_call_rate=1", "open_ms=30000", "open_backoff=2", "max_open_ms=300000",
            "half_open_permits=1", "success_threshold=1", "permit_ttl_ms=10000",
        ])
    }

    @Test func errorsNameTheKeyAndTheValue() {
        var p = BreakerPolicy()
        #expect(throws: PolicyError(key: "failure_rate", value: "1.5", reason: "must be a number above 0 and at most 1")) {
            try p.set("failure_rate", to: "1.5")
        }
        #expect { try p.set("buckets", to: "abc") } throws: { ($0 as? PolicyError)?.description.hasPrefix("buckets=abc") == true }
        #expect { try p.set("window", to: "1") } throws: { ($0 as? PolicyError)?.key == "window" }
        #expect { try p.set("half_open_permits", to: "0") } throws: { ($0 as? PolicyError)?.key == "half_open_permits" }
        #expect { try BreakerPolicy().applying([("open_ms", "60000"), ("max_open_ms", "1000")]) } throws: {
            ($0 as? PolicyError)?.key == "max_open_ms"
        }
    }

    @Test func setAndApply() throws {
        let p = try BreakerPolicy().applying([("failure_rate", "0.25"), ("min_calls", "5"), ("buckets", "5")])
        #expect(p.failureRate == 0.25 && p.minCalls == 5 && p.buckets == 5)
        #expect(p.bucketMs == 6000)
    }

    @Test func openDurationBacksOffUpToTheMaximum() throws {
        let p = try BreakerPolicy().applying([("open_ms", "1000"), ("open_backoff", "2"), ("max_open_ms", "5000")])
        #expect((1...5).map { p.openDuration(opens: $0) } == [1000, 2000, 4000, 5000, 5000])
    }
}

@Suite struct BreakerNameTests {
    @Test(arguments: ["payments", "a", "svc.shipping:v2/eu-west_1", String(repeating: "x", count: 128)])
    func acceptsValidNames(name: String) throws {
        #expect(try BreakerName(name).value == name)
    }

    @Test(arguments: ["", "pay ments", "café", "a{b}", "x*", String(repeating: "x", count: 129), "new\nline"])
    func refusesInvalidNames(name: String) {
        #expect(throws: BreakerNameError.self) { try BreakerName(name) }
    }

    @Test func keysShareOneHashTag() throws {
        let keys = BreakerKeys(prefix: "bd", name: try BreakerName("payments"))
        #expect(keys.all == ["bd:{payments}:s", "bd:{payments}:o", "bd:{payments}:t", "bd:{payments}:h", "bd:{payments}:c"])
        #expect(BreakerKeys.validatePrefix("bd") == nil)
        #expect(BreakerKeys.validatePrefix("a{b") != nil)
        #expect(BreakerKeys.validatePrefix("") != nil)
    }
}
