import NIOCore

/// How long to wait before the next connect after a loss: at once first (a restarted Redis may be
/// back already), then waits doubling from `min` up to `fastMax` during the first `fastWindow` of
/// the outage, so a Redis that comes back is noticed within tens of milliseconds, then doubling up
/// to `max` for an outage that lasts.
struct ReconnectBackoff {
    var min: TimeAmount
    var fastMax: TimeAmount
    var fastWindow: TimeAmount
    var max: TimeAmount
    private var lostAt: NIODeadline?
    private var last: TimeAmount = .zero

    init(min: TimeAmount, fastMax: TimeAmount, fastWindow: TimeAmount, max: TimeAmount) {
        self.min = min
        self.fastMax = fastMax
        self.fastWindow = fastWindow
        self.max = max
    }

    /// The wait before the next attempt, after an attempt (or the connection) failed at `now`.
    mutating func next(now: NIODeadline) -> TimeAmount {
        guard let lostAt else {
            lostAt = now
            last = .zero
            return .zero
        }
        let cap = now - lostAt < fastWindow ? Swift.min(fastMax, max) : max
        let next = last == .zero ? min : last * 2
        last = Swift.min(Swift.max(next, min), Swift.max(cap, min))
        return last
    }

    /// Connected: the next loss starts from an immediate attempt again.
    mutating func reset() {
        lostAt = nil
        last = .zero
    }
}
