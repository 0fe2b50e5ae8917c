import NIOCore
import RESP

/// What a connection needs from the rest of the server: how a request may be scheduled, a way to
/// run it, and the pub/sub fan-out. `CommandDispatcher` is the real one; the connection's tests
/// drive `ConnectionHandler` with one whose completions they release in any order.
protocol ConnectionCommandRunner: Sendable {
    func scheduling(of request: RESPRequest, session: ConnectionSession) -> ConnectionStateMachine<RESPRequest>.Scheduling

    /// Runs `request` and calls `done` once, on `eventLoop`, with its result and the session as
    /// the request left it. May call `done` before returning (an answer needing no store call).
    func run(
        _ request: RESPRequest, session: ConnectionSession, on eventLoop: any EventLoop,
        done: @escaping @Sendable (CommandResult, ConnectionSession) -> Void)

    /// The connection's channels changed; `deliver` hands it a message (from any thread).
    func subscriptionsChanged(
        connection: Int, channels: [String], deliver: @escaping @Sendable (_ channel: String, _ payload: String) -> Void)

    /// The connection is gone: forget its subscriptions.
    func connectionEnded(_ id: Int)

    /// A connection was closed by a limit: idle, a partial request too old, its output not read,
    /// or an unauthenticated connection in the admin reserve.
    func connectionClosed(_ id: Int, peer: String, reason: ConnectionCloseReason)
}

/// Why the server closed a connection itself.
enum ConnectionCloseReason: String, Sendable, Hashable, CaseIterable {
    case idle
    case partialRequest = "partial_request"
    case outputLimit = "output_limit"
    case reserveUnauthenticated = "reserve_unauthenticated"
}

extension CommandDispatcher: ConnectionCommandRunner {
    /// ACQUIRE, REPORT and PING run concurrently: a connection carrying many callers' requests is
    /// served at the rate of all of them. Everything else is a barrier: commands that may change
    /// the session (AUTH, HELLO, CLIENT, SELECT, SUBSCRIBE, RESET, QUIT...), the operators' commands,
    /// whose effect a pipelined request after them expects to see, and the reads (STATE, LIST,
    /// HISTORY, CONFIG GET), which expect to see what the requests before them did.
    func scheduling(of request: RESPRequest, session: ConnectionSession) -> ConnectionStateMachine<RESPRequest>.Scheduling {
        Self.scheduling(of: request)
    }

    static func scheduling(of request: RESPRequest) -> ConnectionStateMachine<RESPRequest>.Scheduling {
        switch request.name {
        case "ACQUIRE", "REPORT", "PING": return .concurrent
        default: return .exclusive
        }
    }

    func run(
        _ request: RESPRequest, session: ConnectionSession, on eventLoop: any EventLoop,
        done: @escaping @Sendable (CommandResult, ConnectionSession) -> Void
    ) {
        if let result = executeImmediately(request, session: session) {
            done(result, session)
            return
        }
        Task(executorPreference: EventLoopTaskExecutor.of(eventLoop)) {
            var s = session
            let result = await self.execute(request, session: &s)
            let updated = s
            if eventLoop.inEventLoop {
                done(result, updated)
            } else {
                eventLoop.execute { done(result, updated) }
            }
        }
    }

    func subscriptionsChanged(
        connection: Int, channels: [String], deliver: @escaping @Sendable (String, String) -> Void
    ) {
        fanout.update(connection: connection, channels: channels, deliver: deliver)
    }

    func connectionEnded(_ id: Int) {
        fanout.remove(connection: id)
    }

    func connectionClosed(_ id: Int, peer: String, reason: ConnectionCloseReason) {
        stats.countClose(reason)
        observer.connectionClosed(reason: reason.rawValue)
        logger.notice("closed a connection", metadata: ["peer": "\(peer)", "reason": "\(reason.rawValue)"])
    }
}
