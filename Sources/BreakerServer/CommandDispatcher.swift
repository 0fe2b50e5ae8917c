import BreakerCore
import BreakerStore
import Logging
import RESP

/// Turns one request into its replies: checks the connection may run it, then runs it against the
/// store (or answers it itself: the handshake, pub/sub bookkeeping, degraded mode).
///
/// `ConnectionHandler` runs a connection's commands through it, several at once where they only
/// read the session (`scheduling(of:session:)`) and one at a time where they may change it; the
/// session goes in and comes out changed (HELLO, AUTH, SUBSCRIBE...).
final class CommandDispatcher: Sendable {
    /// Who may run a command.
    enum Access {
        /// Anyone, before AUTH too.
        case open
        /// Reads and connection housekeeping: the `default` user.
        case read
        /// ACQUIRE and REPORT: the `default` user.
        case replica
        /// Changes to breakers: the `admin` user.
        case admin
    }

    let store: BreakerStore
    let configuration: ServerConfiguration
    let authenticator: Authenticator
    let health: StoreHealth
    let local: LocalBreakers
    /// Operators' modes and open times last seen, which degraded answers keep.
    let known: KnownBreakers
    /// The batched mode's local knowledge, permits and pending folds; nil in strict mode.
    let batched: BatchedBreakers?
    let stats: ServerStats
    let authThrottle = AuthThrottle()
    let fanout: EventFanout
    let observer: any BreakerServerObserver
    let logger: Logger

    init(
        store: BreakerStore, configuration: ServerConfiguration, health: StoreHealth, stats: ServerStats,
        fanout: EventFanout, batched: BatchedBreakers? = nil, known: KnownBreakers? = nil,
        observer: any BreakerServerObserver = NoObserver(), logger: Logger
    ) {
        self.store = store
        self.configuration = configuration
        self.authenticator = Authenticator(password: configuration.password, adminPassword: configuration.adminPassword)
        self.health = health
        self.local = LocalBreakers(capacity: configuration.maxLocalBreakers, logger: logger)
        self.known = known ?? KnownBreakers(capacity: configuration.maxLocalBreakers)
        self.batched = batched
        self.stats = stats
        self.fanout = fanout
        self.observer = observer
        self.logger = logger
    }

    /// Commands a RESP2 connection may run while subscribed, as Redis allows.
    private static let subscribedCommands: Set<String> = [
        "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PING", "QUIT", "RESET",
    ]

    func execute(_ request: RESPRequest, session: inout ConnectionSession) async -> CommandResult {
        let name = request.name
        let args = (1..<max(1, request.arguments.count)).compactMap { request.string(at: $0) }

        if session.isSubscribed && session.version == .resp2
            && (!Self.subscribedCommands.contains(name) || (name == "RESET" && !args.isEmpty))
        {
            return .error(
                "ERR Can't execute '\(name.lowercased())': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )
        }
        guard let access = Self.access(name, args) else {
            // A name the client made up never becomes a metric label of its own.
            observer.commandExecuted("other")
            return .error(Self.unknownCommand(request))
        }
        observer.commandExecuted(name.lowercased())
        if let refusal = refuse(access, name: name, args: args, role: session.role) {
            return refusal
        }

        switch name {
        // The handshake and connection housekeeping.
        case "PING": return ping(args, session: session)
        case "HELLO":
            let result = hello(args, session: &session)
            guard args.contains(where: { $0.uppercased() == "AUTH" }) else { return result }
            return await throttled(result, session: session)
        case "AUTH": return await throttled(auth(args, session: &session), session: session)
        case "CLIENT": return client(args, session: &session)
        case "SELECT": return select(args)
        case "INFO": return info(args)
        case "COMMAND": return command(args)
        case "QUIT": return CommandResult(.simpleString("OK"), close: true)
        // Pub/sub.
        case "SUBSCRIBE": return await subscribe(args, session: &session)
        case "UNSUBSCRIBE": return unsubscribe(args, session: &session)
        case "PSUBSCRIBE": return .error("ERR PSUBSCRIBE is not supported: SUBSCRIBE breakers carries every event")
        case "PUNSUBSCRIBE":
            return CommandResult(.push([.bulk("punsubscribe"), .null, .integer(Int64(session.channels.count))]))
        // Breakers.
        case "ACQUIRE": return await acquire(args, session: session)
        case "REPORT": return await report(args, session: session)
        case "STATE": return await state(args)
        case "LIST": return await list(args)
        case "HISTORY": return await history(args)
        case "CONFIG": return await config(args, session: session)
        case "FORCE": return await force(args, session: session)
        case "RESET" where args.isEmpty: return resetConnection(session: &session)
        case "RESET": return await reset(args, session: session)
        default:
            return .error(Self.unknownCommand(request))
        }
    }

    /// Counts, logs (at most once a second per peer) and, after several in a row, slows a failed
    /// AUTH; a successful one clears the peer's count.
    private func throttled(_ result: CommandResult, session: ConnectionSession) async -> CommandResult {
        let host = AuthThrottle.host(ofPeer: session.peer)
        guard case .error(let message) = result.replies.first, message.hasPrefix("WRONGPASS") else {
            if case .error = result.replies.first {} else { authThrottle.succeeded(host: host) }
            return result
        }
        stats.authFailures.add(1, ordering: .relaxed)
        observer.authFailed()
        let verdict = authThrottle.failed(host: host)
        if verdict.log {
            logger.warning(
                "authentication failed",
                metadata: [
                    "peer": "\(session.peer)", "in_a_row": "\(verdict.consecutive)",
                    "not_logged_since_last_line": "\(verdict.unlogged)",
                ])
        }
        if verdict.delay > .zero {
            stats.authThrottled.add(1, ordering: .relaxed)
            try? await Task.sleep(for: verdict.delay)
        }
        return result
    }

    /// Who may run `name` with `args`; nil for a command breakerd does not know.
    private static func access(_ name: String, _ args: [String]) -> Access? {
        switch name {
        case "PING", "HELLO", "AUTH", "QUIT": return .open
        case "CLIENT", "SELECT", "INFO", "COMMAND", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE",
            "STATE", "LIST", "HISTORY":
            return .read
        case "ACQUIRE", "REPORT": return .replica
        case "CONFIG": return args.first?.uppercased() == "SET" ? .admin : .read
        // RESET alone is Redis's connection reset; RESET <breaker> is an operator's.
        case "RESET": return args.isEmpty ? .open : .admin
        case "FORCE": return .admin
        default: return nil
        }
    }

    /// The refusal for a role that may not run the command, with Redis's codes so clients raise
    /// their usual authentication and permission errors.
    func refuse(_ access: Access, name: String, args: [String], role: AccessRole) -> CommandResult? {
        switch (access, role) {
        case (.open, _), (_, .admin), (.read, .replica), (.replica, .replica):
            return nil
        case (_, .none):
            return .error("NOAUTH Authentication required.")
        case (.admin, .replica):
            var command = name.lowercased()
            if name == "CONFIG" { command += "|set" }
            return .error("NOPERM User \(role.user) has no permissions to run the '\(command)' command")
        }
    }

    /// Redis's own text, which ioredis reads to detect a server without HELLO.
    static func unknownCommand(_ request: RESPRequest) -> String {
        let name = String((request.string(at: 0) ?? "").prefix(128))
        var args = ""
        for i in 1..<max(1, request.arguments.count) where args.utf8.count < 128 {
            let arg = request.string(at: i) ?? ""
            args += "'\(arg.prefix(128 - args.utf8.count))' "
        }
        return "ERR unknown command '\(name)', with args beginning with: \(args)"
    }

    static func wrongArity(_ name: String) -> CommandResult {
        .error("ERR wrong number of arguments for '\(name.lowercased())' command")
    }

    /// Logs each transition a store call made, one line each, and counts those that moved the state.
    func logEvents(_ events: [String]) {
        for event in events {
            known.learn(event: event)
            let words = event.split(separator: " ", maxSplits: 2)
            let breaker = words.first.map(String.init) ?? ""
            logger.notice("transition", metadata: ["breaker": "\(breaker)", "event": "\(event)"])
            if words.count >= 2 {
                let states = words[1].split(separator: ">").map { $0.hasSuffix("-") ? $0.dropLast() : $0 }
                if states.count == 2, let from = BreakerState(rawValue: String(states[0])),
                    let to = BreakerState(rawValue: String(states[1])), from != to
                {
                    observer.transitioned(breaker: breaker, from: from, to: to)
                }
            }
        }
    }

    /// Runs one store call and tells the observer how long it took.
    func timed<T>(_ operation: String, _ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let value = try await body()
            observer.storeCall(operation, duration: clock.now - start, succeeded: true)
            return value
        } catch {
            observer.storeCall(operation, duration: clock.now - start, succeeded: false)
            throw error
        }
    }
}
