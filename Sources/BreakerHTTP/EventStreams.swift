import BreakerServer
import Synchronization

/// The open /events streams and the one in-process listener on the server's event fan-out that
/// feeds them all (started by the first stream, kept until shutdown).
final class EventStreams: Sendable {
    typealias Deliver = @Sendable (String) -> Void

    private let server: BreakerServer
    private let limit: Int
    private let streams = Mutex<(next: Int, all: [Int: Deliver])>((0, [:]))
    private let listener = Mutex<(started: Bool, id: Int?)>((false, nil))

    init(server: BreakerServer, limit: Int) {
        self.server = server
        self.limit = limit
    }

    var count: Int { streams.withLock { $0.all.count } }

    /// Adds a stream; nil when `limit` streams are open already.
    func add(_ deliver: @escaping Deliver) -> Int? {
        streams.withLock { s -> Int? in
            guard s.all.count < limit else { return nil }
            s.next += 1
            s.all[s.next] = deliver
            return s.next
        }
    }

    func remove(_ id: Int) {
        _ = streams.withLock { $0.all.removeValue(forKey: id) }
    }

    /// Starts listening to the server's events, once; returns when Redis confirmed the subscription
    /// (or after the fan-out's own timeout).
    func startListening() async {
        let first = listener.withLock { l -> Bool in
            defer { l.started = true }
            return !l.started
        }
        guard first else { return }
        let id = await server.listenToEvents { [weak self] line in self?.publish(line) }
        listener.withLock { $0.id = id }
    }

    func stop() {
        if let id = listener.withLock({ $0.id }) { server.stopListening(id) }
    }

    private func publish(_ line: String) {
        let targets = streams.withLock { Array($0.all.values) }
        for deliver in targets { deliver(line) }
    }
}
