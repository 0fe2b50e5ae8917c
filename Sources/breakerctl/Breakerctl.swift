import ArgumentParser
import BreakerClient
import BreakerCore
import Foundation

/// The operators' tool: look at the fleet's breakers and act on them.
struct Breakerctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "breakerctl",
        abstract: "Look at and act on the breakers of a breakerd fleet.",
        discussion: """
            Examples:
              breakerctl status                        every breaker, as a table
              breakerctl status 'pay*' --json          breakers matching a glob, as JSON
              breakerctl watch payments                transitions of one breaker as they happen
              breakerctl history payments --count 50
              breakerctl --user admin --password "$ADMIN" force payments open --ttl 60000 --reason "vendor outage"
              breakerctl --user admin --password "$ADMIN" reset payments
              breakerctl config get default
              breakerctl --user admin --password "$ADMIN" config set payments min_calls=10 open_ms=60000
              breakerctl --address 10.0.0.5:7420 --address 10.0.0.6:7420 ping

            Connection: --address (repeatable) or BREAKERCTL_ADDRESS (comma-separated), default 127.0.0.1:7420;
            --password or BREAKERCTL_PASSWORD; --user or BREAKERCTL_USER (admin for force, reset and config set).

            Exit codes:
              0  done
              2  usage: a bad flag or argument
              3  unreachable: no breakerd answered in time
              4  refused: breakerd answered with an error (NOAUTH, WRONGPASS, NOPERM, ERR ...)
              5  not found: the breaker has no state and no history (LIST does not show it),
                 or a status glob matched no breaker
            """,
        subcommands: [
            Status.self, Watch.self, History.self, Force.self, Reset.self, Config.self, Ping.self,
        ]
    )
}

/// Where breakerd is and who we are to it.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .customLong("address"),
        help: "A breakerd to use, host:port (repeatable; env BREAKERCTL_ADDRESS).")
    var addresses: [String] = []

    @Option(help: "AUTH password (env BREAKERCTL_PASSWORD).")
    var password: String?

    @Option(help: "AUTH user: admin for force, reset and config set (env BREAKERCTL_USER).")
    var user: String?

    @Option(name: .customLong("timeout-ms"), help: "Deadline of each request, in milliseconds.")
    var timeoutMs: Int = 2000

    /// The connection options given before the subcommand (`breakerctl --user admin reset x`, as
    /// the help shows them) moved behind it, where each subcommand's option group reads them.
    static func hoisted(_ arguments: [String]) -> [String] {
        let takesValue: Set<String> = ["--address", "--password", "--user", "--timeout-ms"]
        var front: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            let flag = String(word.prefix { $0 != "=" })
            guard takesValue.contains(flag) else { break }
            if word.contains("=") || i + 1 >= arguments.count {
                front.append(word)
                i += 1
            } else {
                front += [word, arguments[i + 1]]
                i += 2
            }
        }
        guard !front.isEmpty else { return arguments }
        var rest = Array(arguments[i...])
        // Before a `--` that ends the options, if there is one.
        let end = rest.firstIndex(of: "--") ?? rest.endIndex
        rest.insert(contentsOf: front, at: end)
        return rest
    }

    func resolvedAddresses() throws -> [BreakerAddress] {
        let env = ProcessInfo.processInfo.environment
        var texts = addresses
        if texts.isEmpty, let e = env["BREAKERCTL_ADDRESS"], !e.isEmpty {
            texts = e.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        }
        if texts.isEmpty { texts = ["127.0.0.1:7420"] }
        return try texts.map { text in
            do { return try BreakerAddress(parsing: text) } catch let error as BreakerClientError {
                throw ValidationError(error.message)
            }
        }
    }

    func makeClient() throws -> BreakerClient {
        let env = ProcessInfo.processInfo.environment
        let configuration = BreakerClientConfiguration(
            addresses: try resolvedAddresses(),
            user: user ?? env["BREAKERCTL_USER"].flatMap { $0.isEmpty ? nil : $0 },
            password: password ?? env["BREAKERCTL_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 },
            clientName: "breakerctl",
            connectionsPerAddress: 1,
            requestTimeout: .milliseconds(max(1, timeoutMs)),
            connectTimeout: .milliseconds(max(1, timeoutMs)),
            cachesOpenState: false
        )
        return BreakerClient(configuration: configuration)
    }

    /// Runs `body` with a client and shuts it down after.
    func with<T: Sendable>(_ body: (BreakerClient) async throws -> T) async throws -> T {
        let client = try makeClient()
        do {
            let value = try await body(client)
            await client.shutdown(timeout: .zero)
            return value
        } catch {
            await client.shutdown(timeout: .zero)
            throw error
        }
    }
}

/// Exit 5: the breaker (or glob) names nothing breakerd knows.
struct NotFound: Error, CustomStringConvertible {
    let description: String
}

enum Exit {
    static let unreachable: Int32 = 3
    static let refused: Int32 = 4
    static let notFound: Int32 = 5
    static let usage: Int32 = 2
}

@main
enum Main {
    static func main() async {
        let command: any ParsableCommand
        do {
            command = try Breakerctl.parseAsRoot(ConnectionOptions.hoisted(Array(CommandLine.arguments.dropFirst())))
        } catch {
            let code = Breakerctl.exitCode(for: error)
            if code == .success { Breakerctl.exit(withError: error) }
            // Usage mistakes exit 2, as shells and most Unix tools do (argument-parser's own is 64).
            FileHandle.standardError.write(Data((Breakerctl.fullMessage(for: error) + "\n").utf8))
            if code == .validationFailure { exit(Exit.usage) }
            exit(code.rawValue)
        }
        do {
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                var sync = command
                try sync.run()
            }
            exit(0)
        } catch let error as BreakerClientError {
            fail(
                error.isUnavailable ? "unreachable: \(error.message)" : error.message,
                error.isUnavailable ? Exit.unreachable : Exit.refused)
        } catch let error as NotFound {
            fail(error.description, Exit.notFound)
        } catch let error as BreakerNameError {
            fail("\(error)", Exit.usage)
        } catch let error as ValidationError {
            fail(error.message, Exit.usage)
        } catch {
            Breakerctl.exit(withError: error)
        }
    }

    static func fail(_ message: String, _ code: Int32) -> Never {
        FileHandle.standardError.write(Data("breakerctl: \(message)\n".utf8))
        exit(code)
    }
}
