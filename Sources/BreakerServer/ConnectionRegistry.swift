import NIOCore
import Synchronization

/// The open client connections, so shutdown can ask each to finish and wait until they have.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[Int: any Channel]>([:])

    func add(_ id: Int, _ channel: any Channel) { channels.withLock { $0[id] = channel } }

    func remove(_ id: Int) { _ = channels.withLock { $0.removeValue(forKey: id) } }

    var all: [any Channel] { channels.withLock { Array($0.values) } }

    var isEmpty: Bool { channels.withLock { $0.isEmpty } }
}
