// A replica that calls a deliberately flaky dependency through BreakerClient.run with a fallback,
// and prints what happens as the shared breaker trips and recovers.
//
//   swift run example-replica [--address host:port]... [--breaker name] [--failure-rate 0.6]
//                             [--interval-ms 100] [--seconds 30] [--password secret]
//
// Start breakerd first (scripts/run). Lower the failure rate while it runs in a second terminal to
// see the half-open trials close the breaker again; or run two replicas to see them trip together.
import BreakerClient
import Foundation

struct Options {
    var addresses: [String] = []
    var breaker = "shipping"
    var failureRate = 0.6
    var intervalMs = 100
    var seconds = 30.0
    var password: String?

    init(_ arguments: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { Options.usage("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--address": addresses.append(value())
            case "--breaker": breaker = value()
            case "--failure-rate": failureRate = Double(value()) ?? failureRate
            case "--interval-ms": intervalMs = Int(value()) ?? intervalMs
            case "--seconds": seconds = Double(value()) ?? seconds
            case "--password": password = value()
            case "--help", "-h": Options.usage(nil)
            default: Options.usage("unknown argument \(arguments[i])")
            }
            i += 1
        }
        if addresses.isEmpty { addresses = ["127.0.0.1:7420"] }
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { print("example-replica: \(problem)") }
        print(
            "usage: example-replica [--address host:port]... [--breaker name] [--failure-rate 0..1] [--interval-ms n] [--seconds n] [--password p]"
        )
        exit(problem == nil ? 0 : 2)
    }
}

/// The dependency: fails `failureRate` of its calls, and is slow now and then.
struct FlakyShipping: Sendable {
    struct Unavailable: Error {}
    let failureRate: Double

    func quote(order: Int) async throws -> String {
        try await Task.sleep(for: .milliseconds(Int.random(in: 5...30)))
        if Double.random(in: 0..<1) < failureRate { throw Unavailable() }
        return "quote #\(order): \(Int.random(in: 5...15)).99"
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let breakers = try BreakerClient(addresses: options.addresses, password: options.password)
let shipping = FlakyShipping(failureRate: options.failureRate)
let end = ContinuousClock.now + .seconds(options.seconds)
var counts = (live: 0, failed: 0, fallback: 0)
var lastState = ""
var order = 0

print(
    "calling '\(options.breaker)' through \(options.addresses.joined(separator: ", ")) for \(options.seconds)s, failure rate \(options.failureRate)"
)
while ContinuousClock.now < end {
    order += 1
    let current = order
    do {
        let quote = try await breakers.run(
            options.breaker, timeout: .milliseconds(500), fallback: { "cached quote" }
        ) {
            try await shipping.quote(order: current)
        }
        if quote == "cached quote" {
            counts.fallback += 1
            print("\(current)  denied  -> \(quote)")
        } else {
            counts.live += 1
            print("\(current)  ok      -> \(quote)")
        }
    } catch {
        counts.failed += 1
        print("\(current)  failed  -> \(error)")
    }
    // Show the shared state whenever it moves (another replica may have moved it).
    if let state = try? await breakers.state(options.breaker), state.state.rawValue != lastState {
        lastState = state.state.rawValue
        print(
            "---- breaker \(state.name) is \(lastState) (calls=\(state.calls) failures=\(state.failures) retry_after_ms=\(state.retryAfterMs))"
        )
    }
    try await Task.sleep(for: .milliseconds(options.intervalMs))
}
await breakers.shutdown()
print(
    "done: \(counts.live) answered, \(counts.failed) failed, \(counts.fallback) served from the fallback"
)
