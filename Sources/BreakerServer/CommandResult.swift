import RESP

/// What a command produced: the replies to write, in order, and whether the connection ends after them.
struct CommandResult: Sendable {
    var replies: [RESPValue]
    var close: Bool = false

    init(_ reply: RESPValue, close: Bool = false) {
        replies = [reply]
        self.close = close
    }

    init(replies: [RESPValue], close: Bool = false) {
        self.replies = replies
        self.close = close
    }

    static func ok() -> CommandResult { CommandResult(.simpleString("OK")) }

    static func error(_ message: String) -> CommandResult { CommandResult(.error(message)) }
}
