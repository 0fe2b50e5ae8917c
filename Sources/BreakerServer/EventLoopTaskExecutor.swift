import NIOCore
import Synchronization

/// Runs a connection's command tasks on that connection's event loop thread.
///
/// A command that needs the store is async (the Redis client's thread answers it). Run on the
/// cooperative pool, each such command crossed threads four times (loop, pool, Redis thread, pool,
/// loop); on the loop it crosses twice, which on two cores is most of strict mode's cost per
/// command. Nothing a command runs blocks: store calls suspend, and locks are held briefly.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    private static let executors = Mutex<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    /// The executor of `eventLoop`, one per loop for the life of the process (loops are few and long-lived).
    static func of(_ eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        executors.withLock { all in
            let id = ObjectIdentifier(eventLoop)
            if let e = all[id] { return e }
            let e = EventLoopTaskExecutor(eventLoop: eventLoop)
            all[id] = e
            return e
        }
    }
}
