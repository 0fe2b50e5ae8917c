import ArgumentParser
import BreakerClient
import BreakerCore
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "A table of breakers: state, mode, failure rate and calls in the window, live trials, time until retry.",
        discussion:
            "Without a glob, every breaker with state in Redis. A glob that matches nothing exits 5.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Only breakers whose name matches this glob (e.g. 'pay*').") var glob: String?
    @Flag(help: "JSON for scripts instead of the table.") var json = false

    func run() async throws {
        let breakers = try await connection.with { try await $0.list(glob) }
        if let glob, breakers.isEmpty { throw NotFound(description: "no breaker matches '\(glob)'") }
        if json {
            print(try Output.json(breakers.map(StatusJSON.init)))
            return
        }
        let plain: (String) -> String = { $0 }
        let rows = breakers.map { b -> [(text: String, paint: (String) -> String)] in
            [
                (b.name, plain),
                (b.state.rawValue, { Output.paint(state: b.state, $0) }),
                (b.mode.rawValue, { b.mode == .auto ? $0 : Output.paint($0, "35") }),
                (Output.percent(b.failureRate), plain),
                ("\(b.calls)", plain),
                ("\(b.failures)", plain),
                ("\(b.liveTrials)/\(b.halfOpenPermits)", plain),
                (Output.duration(ms: b.retryAfterMs), plain),
            ]
        }
        print(
            Output.table(
                ["BREAKER", "STATE", "MODE", "FAILURE_RATE", "CALLS", "FAILURES", "TRIALS", "RETRY_IN"],
                rows))
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print transitions as they happen, one line each (every breaker, or one).",
        discussion:
            "Runs until interrupted (or --count events). Subscription changes go to standard error.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Only this breaker's events.") var breaker: String?
    @Option(help: "Stop after this many events.") var count: Int?
    @Flag(help: "Print each event's raw line.") var raw = false

    func run() async throws {
        if let breaker { _ = try BreakerName(breaker) }
        let client = try connection.makeClient()
        var seen = 0
        let events = client.events(breaker.map { [$0] } ?? []) { status in
            switch status {
            case .live(let address):
                FileHandle.standardError.write(Data("watching through \(address)\n".utf8))
            case .lost(let reason):
                FileHandle.standardError.write(Data("subscription lost (\(reason)); retrying\n".utf8))
            }
        }
        for await event in events {
            print(raw ? event.line : Output.event(event))
            fflush(nil)
            seen += 1
            if let count, seen >= count { break }
        }
        await client.shutdown(timeout: .zero)
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A breaker's transitions, mode and config changes, newest first.",
        discussion: "Exits 5 when the breaker has no history and no state.")

    @OptionGroup var connection: ConnectionOptions
    @Argument var breaker: String
    @Option(help: "How many events (1 to 10000).") var count = 20
    @Flag(help: "JSON for scripts.") var json = false
    @Flag(help: "Print each event's raw line.") var raw = false

    func run() async throws {
        let name = try BreakerName(breaker).value
        let events = try await connection.with { client in
            let events = try await client.history(name, count: count)
            if events.isEmpty, try await !client.exists(name) {
                throw NotFound(description: "no breaker '\(name)'")
            }
            return events
        }
        if json {
            print(try Output.json(events.map(EventJSON.init)))
        } else {
            for e in events { print(raw ? e.line : Output.event(e)) }
        }
    }
}

/// The modes as typed on the command line.
enum ModeArgument: String, ExpressibleByArgument, CaseIterable {
    case open, closed
    case metricsOnly = "metrics-only"
    case auto

    var mode: BreakerMode {
        switch self {
        case .open: return .forcedOpen
        case .closed: return .forcedClosed
        case .metricsOnly: return .metricsOnly
        case .auto: return .auto
        }
    }
}

struct Force: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Force a breaker open, closed or metrics-only, or hand it back to the state machine (auto).",
        discussion:
            "Needs the admin user. Works on a breaker not used yet, so one can be forced ahead of its first call."
    )

    @OptionGroup var connection: ConnectionOptions
    @Argument var breaker: String
    @Argument(help: "open, closed, metrics-only or auto.") var mode: ModeArgument
    @Option(help: "Milliseconds until the mode expires.") var ttl: Int?
    @Option(help: "Why, for the history.") var reason: String?

    func run() async throws {
        let name = try BreakerName(breaker).value
        if let ttl, ttl <= 0 { throw ValidationError("--ttl must be a number of milliseconds above 0") }
        let result = try await connection.with {
            try await $0.force(name, mode: mode.mode, ttl: ttl.map { .milliseconds($0) }, reason: reason)
        }
        print(
            "\(name) \(Output.paint(state: result.state, result.state.rawValue)) mode=\(result.mode.rawValue)"
        )
    }
}

struct Reset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reset a breaker: closed, auto, an empty window, no backoff.",
        discussion:
            "Needs the admin user. Exits 5, resetting nothing, when breakerd does not know the breaker (a typo)."
    )

    @OptionGroup var connection: ConnectionOptions
    @Argument var breaker: String

    func run() async throws {
        let name = try BreakerName(breaker).value
        let state = try await connection.with { client in
            guard try await client.exists(name) else {
                throw NotFound(description: "no breaker '\(name)'")
            }
            return try await client.reset(name)
        }
        print("\(name) \(Output.paint(state: state, state.rawValue))")
    }
}

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read or change a breaker's policy, or the fleet default's.",
        subcommands: [Get.self, Set.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The effective policy, one key=value per line.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "A breaker, or default.") var breaker: String
        @Flag(help: "A JSON object for scripts.") var json = false

        func run() async throws {
            let settings = try await connection.with { try await $0.config(breaker) }
            if json {
                print(
                    try Output.json(
                        Dictionary(settings.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })))
            } else {
                for s in settings { print("\(s.key)=\(s.value)") }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set policy keys (admin); the value default removes a breaker's own value.",
            discussion: "Example: breakerctl config set payments min_calls=10 open_ms=60000")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "A breaker, or default.") var breaker: String
        @Argument(help: "key=value pairs.") var settings: [String]

        func validate() throws {
            guard !settings.isEmpty else { throw ValidationError("give at least one key=value") }
            for s in settings where !s.contains("=") { throw ValidationError("'\(s)' is not key=value") }
        }

        func run() async throws {
            let pairs = settings.map { s -> PolicySetting in
                let parts = s.split(separator: "=", maxSplits: 1)
                return PolicySetting(key: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
            }
            try await connection.with { try await $0.setConfig(breaker, pairs) }
            print("OK")
        }
    }
}

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "PING every address (with AUTH as given) and print the round trip.",
        discussion: "Exits 0 when every address answered, 4 when one refused (a bad password), else 3.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.makeClient()
        var worst: BreakerClientError?
        for address in try connection.resolvedAddresses() {
            do {
                let rtt = try await client.ping(address)
                print(
                    "\(address) PONG \(String(format: "%.2f", Double(rtt.components.attoseconds) / 1e15 + Double(rtt.components.seconds) * 1000)) ms"
                )
            } catch let error as BreakerClientError {
                print("\(address) \(error.isUnavailable ? "unreachable" : "refused"): \(error.message)")
                if worst == nil || worst!.isUnavailable { worst = error }
            }
        }
        await client.shutdown(timeout: .zero)
        if let worst { throw worst }
    }
}
