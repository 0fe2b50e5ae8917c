import Foundation
import RESP

/// What client libraries send before and around their first real command (see shared/CLIENTS.md).
extension CommandDispatcher {
    /// The Redis version HELLO and INFO claim: libraries gate features on it, and breakerd speaks
    /// the RESP2/RESP3 of Redis 7.
    static let redisVersion = "7.0.0"
    static let breakerdVersion = "0.1.0"

    func ping(_ args: [String], session: ConnectionSession) -> CommandResult {
        guard args.count <= 1 else { return Self.wrongArity("ping") }
        if session.isSubscribed && session.version == .resp2 {
            // Redis answers a subscribed RESP2 PING in pub/sub form; redis-py's health check expects it.
            return CommandResult(.array([.bulk("pong"), .bulk(args.first ?? "")]))
        }
        if let message = args.first { return CommandResult(.bulk(message)) }
        return CommandResult(.simpleString("PONG"))
    }

    func hello(_ args: [String], session: inout ConnectionSession) -> CommandResult {
        var version = session.version
        var i = 0
        if let first = args.first {
            guard let v = Int(first) else {
                return .error("ERR Protocol version is not an integer or out of range")
            }
            guard let known = RESPVersion(rawValue: v) else { return .error("NOPROTO unsupported protocol version") }
            version = known
            i = 1
        }
        var role = session.role
        var name: String?
        while i < args.count {
            let option = args[i].uppercased()
            if option == "AUTH" && i + 2 < args.count {
                guard let r = authenticator.authenticate(user: args[i + 1], secret: args[i + 2], current: role) else {
                    return .error("WRONGPASS invalid username-password pair or user is disabled.")
                }
                role = r
                i += 3
            } else if option == "SETNAME" && i + 1 < args.count {
                guard Self.isValidClientName(args[i + 1]) else { return Self.badClientName() }
                name = args[i + 1]
                i += 2
            } else {
                return .error("ERR Syntax error in HELLO option '\(args[i])'")
            }
        }
        if role == .none {
            return .error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
            )
        }
        session.role = role
        session.version = version
        if let name { session.name = name }
        return CommandResult(
            .map([
                (.bulk("server"), .bulk("breakerd")),
                (.bulk("version"), .bulk(Self.redisVersion)),
                (.bulk("proto"), .integer(Int64(version.rawValue))),
                (.bulk("id"), .integer(Int64(session.id))),
                (.bulk("mode"), .bulk("standalone")),
                (.bulk("role"), .bulk("master")),
                (.bulk("modules"), .array([])),
            ]))
    }

    func auth(_ args: [String], session: inout ConnectionSession) -> CommandResult {
        guard args.count == 1 || args.count == 2 else { return Self.wrongArity("auth") }
        let user = args.count == 2 ? args[0] : nil
        guard let role = authenticator.authenticate(user: user, secret: args.last!, current: session.role) else {
            return .error("WRONGPASS invalid username-password pair or user is disabled.")
        }
        session.role = role
        return .ok()
    }

    func client(_ args: [String], session: inout ConnectionSession) -> CommandResult {
        guard let sub = args.first?.uppercased() else { return Self.wrongArity("client") }
        switch sub {
        case "SETNAME":
            guard args.count == 2 else { return Self.wrongArity("client|setname") }
            guard Self.isValidClientName(args[1]) else { return Self.badClientName() }
            session.name = args[1]
            return .ok()
        case "GETNAME":
            return CommandResult(session.name.isEmpty ? .null : .bulk(session.name))
        case "ID":
            return CommandResult(.integer(Int64(session.id)))
        case "SETINFO":
            // Library names and versions are accepted and not kept: nothing here reads them.
            guard args.count == 3 else { return Self.wrongArity("client|setinfo") }
            return .ok()
        case "INFO":
            let text = "id=\(session.id) addr=\(session.peer) name=\(session.name) user=\(session.role.user) resp=\(session.version.rawValue)\n"
            return CommandResult(.bulk(text))
        case "HELP":
            let help: [String] = [
                "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
                "GETNAME", "    Return the name of the current connection.",
                "ID", "    Return the ID of the current connection.",
                "INFO", "    Return information about the current client connection.",
                "SETINFO <LIB-NAME|LIB-VER> <value>", "    Accepted and not kept (client libraries send it).",
                "SETNAME <name>", "    Name the connection: the reporter name in metrics and operators' actions.",
                "HELP", "    Print this help.",
            ]
            return CommandResult(.array(help.map { RESPValue.simpleString($0) }))
        default:
            return .error("ERR unknown subcommand '\(args[0])'. Try CLIENT HELP.")
        }
    }

    /// Redis's RESET: back to a fresh connection (RESP2, no name, no subscriptions, not authenticated).
    func resetConnection(session: inout ConnectionSession) -> CommandResult {
        session.version = .resp2
        session.name = ""
        session.channels = []
        session.role = authenticator.initialRole
        return CommandResult(.simpleString("RESET"))
    }

    func select(_ args: [String]) -> CommandResult {
        guard args.count == 1 else { return Self.wrongArity("select") }
        guard let db = Int(args[0]) else { return .error("ERR value is not an integer or out of range") }
        // Breakers live in one namespace; only database 0 exists.
        return db == 0 ? .ok() : .error("ERR DB index is out of range")
    }

    /// INFO [section ...]: Redis's sections, of those breakerd has (`all`, `everything` and
    /// `default` or none mean every one); an unknown section gives an empty reply, as Redis does.
    func info(_ sections: [String] = []) -> CommandResult {
        let uptime = Int(Date().timeIntervalSince(stats.startedAt))
        let all: [String] = [
            "# Server",
            "redis_version:\(Self.redisVersion)",
            "breakerd_version:\(Self.breakerdVersion)",
            "redis_mode:standalone",
            "process_id:\(ProcessInfo.processInfo.processIdentifier)",
            "tcp_port:\(stats.port.load(ordering: .relaxed))",
            "uptime_in_seconds:\(uptime)",
            "",
            "# Clients",
            "connected_clients:\(stats.connectedClients.load(ordering: .relaxed))",
            "maxclients:\(configuration.maxClients)",
            "rejected_connections:\(stats.rejectedConnections.load(ordering: .relaxed))",
            "pubsub_clients:\(fanout.subscriberCount)",
            "rejected_per_peer:\(stats.rejectedPerPeer.load(ordering: .relaxed))",
            "admin_reserve_admitted:\(stats.reserveAdmitted.load(ordering: .relaxed))",
            "",
            "# Stats",
            "closed_partial_requests:\(stats.closed(.partialRequest))",
            "closed_idle:\(stats.closed(.idle))",
            "closed_output_limit:\(stats.closed(.outputLimit))",
            "closed_reserve_unauthenticated:\(stats.closed(.reserveUnauthenticated))",
            "auth_failures:\(stats.authFailures.load(ordering: .relaxed))",
            "auth_throttled:\(stats.authThrottled.load(ordering: .relaxed))",
            "degraded_answers:\(stats.degradedAnswers.load(ordering: .relaxed))",
            "store_timeouts:\(stats.storeFailures.load(ordering: .relaxed))",
            "folds_lost:\(stats.foldsLost.load(ordering: .relaxed))",
            "outcomes_lost:\(stats.outcomesLost.load(ordering: .relaxed))",
            "",
            "# Persistence",
            "loading:0",
            "",
            "# Store",
            "store:\(health.isUp ? "up" : "down")",
            "store_detail:\(health.detail.replacingOccurrences(of: "\n", with: " "))",
            "key_prefix:\(store.configuration.keyPrefix)",
            "degraded_policy:\(configuration.degradedPolicy.rawValue)",
            "local_breakers:\(local.count)",
        ]
        let wanted = Set(sections.map { $0.lowercased() })
        var lines: [String] = []
        var keep = true
        for line in all {
            if line.hasPrefix("# ") {
                let name = line.dropFirst(2).lowercased()
                keep = wanted.isEmpty || !wanted.isDisjoint(with: ["all", "everything", "default"]) || wanted.contains(name)
            }
            if keep { lines.append(line) }
        }
        while lines.last == "" { lines.removeLast() }
        return CommandResult(.bulk(lines.isEmpty ? "" : lines.joined(separator: "\r\n") + "\r\n"))
    }

    func command(_ args: [String]) -> CommandResult {
        // redis-cli asks for COMMAND DOCS to draw hints and answer HELP; COMMAND itself may be empty.
        switch args.first?.uppercased() {
        case "DOCS": return CommandResult(CommandDocs.reply(for: Array(args.dropFirst())))
        case "COUNT": return CommandResult(.integer(0))
        default: return CommandResult(.array([]))
        }
    }

    static func isValidClientName(_ name: String) -> Bool {
        name.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    }

    static func badClientName() -> CommandResult {
        .error("ERR Client names cannot contain spaces, newlines or special characters.")
    }
}
