import RESP

/// SUBSCRIBE and UNSUBSCRIBE: the session's channel list and Redis's confirmation frames. The
/// connection handler registers the new list with the fan-out once the command returns.
extension CommandDispatcher {
    func subscribe(_ args: [String], session: inout ConnectionSession) async -> CommandResult {
        guard !args.isEmpty else { return Self.wrongArity("subscribe") }
        for channel in args where !EventFanout.isValidChannel(channel) {
            return .error("ERR unknown channel '\(channel)': subscribe to breakers or breaker:<name>")
        }
        await fanout.waitUntilLive()
        var replies: [RESPValue] = []
        for channel in args {
            if !session.channels.contains(channel) { session.channels.append(channel) }
            replies.append(.push([.bulk("subscribe"), .bulk(channel), .integer(Int64(session.channels.count))]))
        }
        return CommandResult(replies: replies)
    }

    func unsubscribe(_ args: [String], session: inout ConnectionSession) -> CommandResult {
        let targets = args.isEmpty ? session.channels : args
        if targets.isEmpty {
            return CommandResult(.push([.bulk("unsubscribe"), .null, .integer(0)]))
        }
        var replies: [RESPValue] = []
        for channel in targets {
            session.channels.removeAll { $0 == channel }
            replies.append(.push([.bulk("unsubscribe"), .bulk(channel), .integer(Int64(session.channels.count))]))
        }
        return CommandResult(replies: replies)
    }
}
