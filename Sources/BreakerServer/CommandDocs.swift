import RESP

/// COMMAND DOCS for breakerd's own commands, in Redis 7's shape, so redis-cli's interactive mode
/// shows argument hints and `HELP <command>` for them.
enum CommandDocs {
    /// One argument: `name` shown as the hint; `token` a literal word before it (LATENCY <ms>).
    struct Argument {
        var name: String
        var type: String = "string"
        var token: String?
        var optional = false
        var multiple = false
        var oneOf: [String] = []

        var value: RESPValue {
            var pairs: [(RESPValue, RESPValue)] = [(.bulk("name"), .bulk(name)), (.bulk("type"), .bulk(oneOf.isEmpty ? type : "oneof"))]
            if let token { pairs.append((.bulk("token"), .bulk(token))) }
            var flags: [RESPValue] = []
            if optional { flags.append(.simpleString("optional")) }
            if multiple { flags.append(.simpleString("multiple")) }
            if !flags.isEmpty { pairs.append((.bulk("flags"), .set(flags))) }
            if !oneOf.isEmpty {
                let choices = oneOf.map { word -> RESPValue in
                    .map([(.bulk("name"), .bulk(word.lowercased())), (.bulk("type"), .bulk("pure-token")), (.bulk("token"), .bulk(word))])
                }
                pairs.append((.bulk("arguments"), .array(choices)))
            }
            return .map(pairs)
        }
    }

    static let breaker = Argument(name: "breaker", type: "key")

    static let entries: [(name: String, summary: String, group: String, arguments: [Argument])] = [
        ("acquire", "Asks for a permit to call the dependency behind a breaker.", "breaker", [breaker]),
        (
            "report", "Reports the outcome of a call made under a permit.", "breaker",
            [
                breaker, Argument(name: "permit"), Argument(name: "outcome", oneOf: ["SUCCESS", "FAILURE", "IGNORE"]),
                Argument(name: "ms", type: "integer", token: "LATENCY", optional: true),
            ]
        ),
        ("state", "Shows a breaker's state and window figures.", "breaker", [breaker]),
        ("list", "Lists the state of every breaker matching a pattern.", "breaker", [Argument(name: "pattern", type: "pattern", optional: true)]),
        ("history", "Shows a breaker's events, newest first.", "breaker", [breaker, Argument(name: "count", type: "integer", optional: true)]),
        (
            "force", "Forces a breaker open, closed or metrics-only, or back to auto.", "breaker",
            [
                breaker, Argument(name: "mode", oneOf: ["OPEN", "CLOSED", "METRICS_ONLY", "AUTO"]),
                Argument(name: "ms", type: "integer", token: "TTL", optional: true),
                Argument(name: "text", token: "REASON", optional: true),
            ]
        ),
        ("reset", "Returns a breaker to closed and auto with an empty window.", "breaker", [breaker]),
        (
            "config", "Reads (GET) or changes (SET) the policy of a breaker or of the default.", "breaker",
            [
                Argument(name: "action", oneOf: ["GET", "SET"]), Argument(name: "breaker|default", type: "key"),
                Argument(name: "key value", optional: true, multiple: true),
            ]
        ),
        ("subscribe", "Receives events: channel breakers (all) or breaker:<name>.", "pubsub", [Argument(name: "channel", multiple: true)]),
    ]

    /// The reply to COMMAND DOCS [name ...]: a map of command name to its docs.
    static func reply(for names: [String]) -> RESPValue {
        let wanted = Set(names.map { $0.lowercased() })
        let docs = entries.filter { wanted.isEmpty || wanted.contains($0.name) }.map { e -> (RESPValue, RESPValue) in
            (
                .bulk(e.name),
                .map([
                    (.bulk("summary"), .bulk(e.summary)),
                    (.bulk("since"), .bulk(CommandDispatcher.breakerdVersion)),
                    (.bulk("group"), .bulk(e.group)),
                    (.bulk("arguments"), .array(e.arguments.map(\.value))),
                ])
            )
        }
        return .map(docs)
    }
}
