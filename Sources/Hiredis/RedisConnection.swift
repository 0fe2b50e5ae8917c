import CHiredis

#if canImport(Glibc)
    import Glibc
#endif

/// One blocking hiredis connection. Not thread-safe: one thread at a time, and never an event loop
/// or a thread of Swift's cooperative pool (`RedisClient` gives each connection a thread of its own).
/// After its first I/O error a hiredis context is dead; `isBroken` then says so and the owner drops it.
public final class RedisConnection {
    public struct Options: Sendable, Hashable {
        /// How long connecting (and the login commands) may take.
        public var connectTimeoutMs: Int
        /// How long one read or write may block before the call fails as `.timeout`.
        public var commandTimeoutMs: Int

        public init(connectTimeoutMs: Int = 1000, commandTimeoutMs: Int = 1000) {
            self.connectTimeoutMs = connectTimeoutMs
            self.commandTimeoutMs = commandTimeoutMs
        }
    }

    private var context: UnsafeMutablePointer<redisContext>?
    public let endpoint: RedisEndpoint
    /// True once the connection has failed; every later call throws `.unavailable`.
    public private(set) var isBroken = false

    /// Connects, then logs in (AUTH) and selects the database the endpoint names.
    public init(endpoint: RedisEndpoint, options: Options = .init()) throws(RedisError) {
        self.endpoint = endpoint
        let tv = chiredis_timeval_ms(Int64(options.connectTimeoutMs))
        let ctx: UnsafeMutablePointer<redisContext>?
        switch endpoint.address {
        case .tcp(let host, let port):
            ctx = redisConnectWithTimeout(host, Int32(port), tv)
        case .unix(let path):
            ctx = redisConnectUnixWithTimeout(path, tv)
        }
        guard let ctx else { throw RedisError(.connect, "cannot allocate a hiredis context") }
        if chiredis_context_err(ctx) != 0 {
            let message = String(cString: chiredis_context_errstr(ctx))
            redisFree(ctx)
            throw RedisError(.connect, "\(endpoint): \(message)")
        }
        context = ctx
        // The login commands run under the connect timeout, then the command timeout takes over.
        redisSetTimeout(ctx, tv)
        do throws(RedisError) {
            if let password = endpoint.password {
                var auth = ["AUTH"]
                if let user = endpoint.username { auth.append(user) }
                auth.append(password)
                if case .error(let e) = try command(auth) {
                    throw RedisError(.handshake, "AUTH refused by \(endpoint): \(e)")
                }
            }
            if endpoint.database != 0 {
                if case .error(let e) = try command(["SELECT", String(endpoint.database)]) {
                    throw RedisError(.handshake, "SELECT \(endpoint.database) refused by \(endpoint): \(e)")
                }
            }
        } catch {
            close()
            throw error
        }
        redisSetTimeout(ctx, chiredis_timeval_ms(Int64(options.commandTimeoutMs)))
    }

    deinit { close() }

    /// Frees the hiredis context; the connection is broken from then on.
    public func close() {
        if let context { redisFree(context) }
        context = nil
        isBroken = true
    }

    /// Sends one command and waits for its reply.
    public func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try pipeline([arguments.map { Array($0.utf8) }])[0]
    }

    /// Sends one command of raw byte arguments and waits for its reply.
    public func command(bytes arguments: [[UInt8]]) throws(RedisError) -> RedisReply {
        try pipeline([arguments])[0]
    }

    /// Writes every command, then reads every reply, in order: one round trip for all of them.
    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        guard let context, !isBroken else { throw RedisError(.unavailable, "connection to \(endpoint) is closed") }
        for command in commands {
            try append(command, to: context)
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                throw fail(context)
            }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            replies.append(RedisReply(copying: reply))
        }
        return replies
    }

    /// Writes one command without waiting for a reply (for SUBSCRIBE; read with `readReply`).
    public func write(_ arguments: [String]) throws(RedisError) {
        guard let context, !isBroken else { throw RedisError(.unavailable, "connection to \(endpoint) is closed") }
        try append(arguments.map { Array($0.utf8) }, to: context)
        // Flush now: hiredis writes its output buffer only when a reply is read.
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw fail(context) }
        }
    }

    /// Waits for the next reply or pushed message; `.timeout` after the command timeout.
    public func readReply() throws(RedisError) -> RedisReply {
        guard let context, !isBroken else { throw RedisError(.unavailable, "connection to \(endpoint) is closed") }
        var raw: UnsafeMutableRawPointer?
        if redisGetReply(context, &raw) != REDIS_OK || raw == nil { throw fail(context) }
        defer { freeReplyObject(raw) }
        return RedisReply(copying: raw!.assumingMemoryBound(to: redisReply.self))
    }

    private func append(_ command: [[UInt8]], to context: UnsafeMutablePointer<redisContext>) throws(RedisError) {
        // hiredis copies the arguments into its output buffer, so pointers need only live for the call.
        let argc = command.count
        let status: Int32 = withPointers(command) { argv, lengths in
            redisAppendCommandArgv(context, Int32(argc), argv, lengths)
        }
        if status != REDIS_OK { throw fail(context) }
    }

    private func fail(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let code = chiredis_context_err(context)
        let message = String(cString: chiredis_context_errstr(context))
        close()
        switch code {
        case REDIS_ERR_IO:
            // hiredis 0.14 has no timeout code: a socket timeout is an I/O error with EAGAIN's text.
            if message.contains("temporarily unavailable") || message.contains("timed out") {
                return RedisError(.timeout, "\(endpoint) did not answer in time")
            }
            return RedisError(.io, "\(endpoint): \(message)")
        case REDIS_ERR_EOF: return RedisError(.eof, "\(endpoint) closed the connection")
        case REDIS_ERR_PROTOCOL: return RedisError(.protocol, "\(endpoint): \(message)")
        default: return RedisError(.other, "\(endpoint): \(message)")
        }
    }
}
