import Foundation
import Synchronization

/// An async Redis client over a few hiredis connections, each owned by a thread of its own so no
/// blocking call ever runs on an event loop or on Swift's cooperative pool.
///
/// Requests that arrive while a connection is busy queue up and go out together as one pipeline,
/// so many callers share few connections and one round trip. Every request has a deadline: when
/// Redis cannot answer in time the caller gets `.timeout` at the deadline, not when the socket gives
/// up. A connection that fails is dropped and made again, with backoff, by its thread.
public final class RedisClient: Sendable {
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        /// How many connections (and threads) to keep.
        public var connections: Int
        public var connectTimeoutMs: Int
        /// A request not answered within this many milliseconds fails with `.timeout`.
        public var deadlineMs: Int
        /// The most requests one pipeline carries.
        public var maxBatch: Int
        /// Reconnect backoff: the first wait, doubled on every failure up to the maximum.
        public var reconnectMinMs: Int
        public var reconnectMaxMs: Int
        /// Told when the client as a whole becomes reachable (true) or loses its last connection (false).
        public var onStateChange: (@Sendable (_ up: Bool, _ detail: String) -> Void)?

        public init(
            endpoint: RedisEndpoint,
            connections: Int = 2,
            connectTimeoutMs: Int = 1000,
            deadlineMs: Int = 500,
            maxBatch: Int = 256,
            reconnectMinMs: Int = 50,
            reconnectMaxMs: Int = 2000,
            onStateChange: (@Sendable (Bool, String) -> Void)? = nil
        ) {
            self.endpoint = endpoint
            self.connections = max(1, connections)
            self.connectTimeoutMs = connectTimeoutMs
            self.deadlineMs = max(1, deadlineMs)
            self.maxBatch = max(1, maxBatch)
            self.reconnectMinMs = reconnectMinMs
            self.reconnectMaxMs = reconnectMaxMs
            self.onStateChange = onStateChange
        }
    }

    public let configuration: Configuration
    private let workers: [Worker]
    private let nextWorker = Atomic<Int>(0)
    private let shared: Shared
    private let sweeper: Sweeper

    public init(configuration: Configuration) {
        self.configuration = configuration
        let shared = Shared(configuration: configuration)
        self.shared = shared
        workers = (0..<configuration.connections).map { Worker(index: $0, shared: shared) }
        sweeper = Sweeper(workers: workers, tickMs: max(1, min(configuration.deadlineMs / 8, 20)))
        for worker in workers { worker.start() }
        sweeper.start()
    }

    deinit { shutdown() }

    /// True while at least one connection is up.
    public var isConnected: Bool { shared.connectedWorkers.load(ordering: .relaxed) > 0 }

    /// Sends one command and waits for its reply (an error reply is a reply, not a throw).
    public func send(_ command: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await send(pipeline: [command])[0]
    }

    /// Sends one command of text arguments.
    public func send(_ command: [String]) async throws(RedisError) -> RedisReply {
        try await send(pipeline: [command.map { Array($0.utf8) }])[0]
    }

    /// Sends several commands back to back on one connection and returns their replies in order.
    public func send(pipeline commands: [[[UInt8]]]) async throws(RedisError) -> [RedisReply] {
        let i = nextWorker.add(1, ordering: .relaxed).newValue
        let worker = workers[Int(UInt(bitPattern: i) % UInt(workers.count))]
        let deadline = monotonicNanos() + UInt64(configuration.deadlineMs) * 1_000_000
        let result: Result<[RedisReply], RedisError> = await withCheckedContinuation { continuation in
            worker.enqueue(Request(commands: commands, deadline: deadline, continuation: continuation))
        }
        return try result.get()
    }

    /// Stops every thread; queued requests fail with `.unavailable`.
    public func shutdown() {
        sweeper.stop()
        for worker in workers { worker.stop() }
    }
}

/// What the workers share with their client.
private final class Shared: Sendable {
    let configuration: RedisClient.Configuration
    let connectedWorkers = Atomic<Int>(0)

    init(configuration: RedisClient.Configuration) { self.configuration = configuration }

    func workerConnected(_ up: Bool, detail: String) {
        if up {
            if connectedWorkers.add(1, ordering: .relaxed).newValue == 1 {
                configuration.onStateChange?(true, detail)
            }
        } else if connectedWorkers.subtract(1, ordering: .relaxed).newValue == 0 {
            configuration.onStateChange?(false, detail)
        }
    }
}

private final class Request: @unchecked Sendable {
    let commands: [[[UInt8]]]
    let deadline: UInt64
    // Guarded by the owning worker's lock: whoever sets it resumes the continuation.
    var done = false
    let continuation: CheckedContinuation<Result<[RedisReply], RedisError>, Never>

    init(
        commands: [[[UInt8]]], deadline: UInt64,
        continuation: CheckedContinuation<Result<[RedisReply], RedisError>, Never>
    ) {
        self.commands = commands
        self.deadline = deadline
        self.continuation = continuation
    }
}

private final class Worker: @unchecked Sendable {
    let index: Int
    let shared: Shared
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [Request] = []
    private var inFlight: [Request] = []
    private var stopped = false
    private var thread: Thread?

    // Touched only by the worker thread.
    private var connection: RedisConnection?
    private var nextAttempt: UInt64 = 0
    private var backoffMs = 0
    private var everConnected = false

    init(index: Int, shared: Shared) {
        self.index = index
        self.shared = shared
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "redis-\(index)"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    func stop() {
        condition.lock()
        let wasStopped = stopped
        stopped = true
        let dropped = queue
        queue = []
        condition.broadcast()
        condition.unlock()
        if !wasStopped { finish(dropped, with: .failure(RedisError(.unavailable, "the Redis client was shut down"))) }
    }

    func enqueue(_ request: Request) {
        condition.lock()
        if stopped {
            request.done = true
            condition.unlock()
            request.continuation.resume(returning: .failure(RedisError(.unavailable, "the Redis client was shut down")))
            return
        }
        queue.append(request)
        if queue.count == 1 { condition.signal() }
        condition.unlock()
    }

    /// Fails every request whose deadline has passed; called by the sweeper.
    func expire(now: UInt64) {
        var expired: [Request] = []
        condition.lock()
        for r in inFlight where !r.done && r.deadline <= now {
            r.done = true
            expired.append(r)
        }
        if let first = queue.first, first.deadline <= now {
            queue.removeAll { r in
                if !r.done && r.deadline <= now {
                    r.done = true
                    expired.append(r)
                    return true
                }
                return r.done
            }
        }
        condition.unlock()
        let error = RedisError(.timeout, "\(shared.configuration.endpoint) did not answer within \(shared.configuration.deadlineMs) ms")
        for r in expired { r.continuation.resume(returning: .failure(error)) }
    }

    private func run() {
        let maxBatch = shared.configuration.maxBatch
        while true {
            condition.lock()
            while queue.isEmpty && !stopped {
                if connection == nil && everConnected && nextAttempt > 0 {
                    // Disconnected: wake at the next attempt to reconnect without waiting for work.
                    let wait = Double(Int64(nextAttempt) - Int64(monotonicNanos())) / 1e9
                    if wait <= 0 { break }
                    _ = condition.wait(until: Date(timeIntervalSinceNow: wait))
                    if monotonicNanos() >= nextAttempt { break }
                } else {
                    condition.wait()
                }
            }
            if stopped {
                inFlight = []
                condition.unlock()
                connection?.close()
                connection = nil
                return
            }
            let batch: [Request]
            if queue.count <= maxBatch {
                batch = queue
                queue.removeAll(keepingCapacity: true)
            } else {
                batch = Array(queue.prefix(maxBatch))
                queue.removeFirst(maxBatch)
            }
            inFlight = batch
            condition.unlock()

            if batch.isEmpty {
                _ = ensureConnected()
                continue
            }
            execute(batch)
            condition.lock()
            inFlight = []
            condition.unlock()
        }
    }

    private func ensureConnected() -> RedisError? {
        if let connection, !connection.isBroken { return nil }
        let now = monotonicNanos()
        if now < nextAttempt {
            let ms = (nextAttempt - now) / 1_000_000
            return RedisError(.unavailable, "not connected to \(shared.configuration.endpoint); next attempt in \(ms) ms")
        }
        let config = shared.configuration
        do {
            connection = try RedisConnection(
                endpoint: config.endpoint,
                options: .init(connectTimeoutMs: config.connectTimeoutMs, commandTimeoutMs: config.deadlineMs)
            )
            backoffMs = 0
            nextAttempt = 0
            everConnected = true
            shared.workerConnected(true, detail: "connected to \(config.endpoint)")
            return nil
        } catch {
            connection = nil
            backoffMs = backoffMs == 0 ? config.reconnectMinMs : min(backoffMs * 2, config.reconnectMaxMs)
            nextAttempt = monotonicNanos() + UInt64(backoffMs) * 1_000_000
            everConnected = true
            return error
        }
    }

    private func execute(_ batch: [Request]) {
        // Requests that already timed out are not sent: their callers have their answer.
        condition.lock()
        let live = batch.filter { !$0.done }
        condition.unlock()
        if live.isEmpty { return }

        if let error = ensureConnected() {
            finish(live, with: .failure(error))
            return
        }
        let commands = live.count == 1 ? live[0].commands : live.flatMap { $0.commands }
        do {
            let replies = try connection!.pipeline(commands)
            var offset = 0
            condition.lock()
            var results: [(Request, [RedisReply])] = []
            results.reserveCapacity(live.count)
            for r in live {
                let n = r.commands.count
                if !r.done {
                    r.done = true
                    results.append((r, Array(replies[offset..<(offset + n)])))
                }
                offset += n
            }
            condition.unlock()
            for (r, replies) in results { r.continuation.resume(returning: .success(replies)) }
        } catch {
            connection = nil
            // Try again at once on the next request; backoff starts if that connect fails.
            nextAttempt = 0
            shared.workerConnected(false, detail: error.description)
            finish(live, with: .failure(error))
        }
    }

    private func finish(_ requests: [Request], with result: Result<[RedisReply], RedisError>) {
        condition.lock()
        let pending = requests.filter { r in
            if r.done { return false }
            r.done = true
            return true
        }
        condition.unlock()
        for r in pending { r.continuation.resume(returning: result) }
    }
}

/// One thread per client that fails requests at their deadline.
private final class Sweeper: @unchecked Sendable {
    let workers: [Worker]
    let tickMs: Int
    private let stopped = Atomic<Bool>(false)

    init(workers: [Worker], tickMs: Int) {
        self.workers = workers
        self.tickMs = tickMs
    }

    func start() {
        let thread = Thread { [self] in
            while !self.stopped.load(ordering: .relaxed) {
                usleep(UInt32(self.tickMs * 1000))
                let now = monotonicNanos()
                for w in self.workers { w.expire(now: now) }
            }
        }
        thread.name = "redis-deadlines"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}

/// Nanoseconds on the monotonic clock.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
