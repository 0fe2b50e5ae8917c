import BreakerCore
import Synchronization

extension BreakerClient {
    /// Runs `operation` through the breaker: acquire, call, classify, report, return.
    ///
    /// - Permitted: the operation runs (cancelled at `timeout` if given, which throws
    ///   `BreakerOperationTimeout` and counts as FAILURE); its outcome is classified — a thrown error
    ///   by `ignore` (IGNORE when true) then `configuration.classifyError`, a result by `isFailure`
    ///   — and reported with the measured latency in the background: the result is returned at once,
    ///   and a report that fails is logged, never thrown. The operation's error is rethrown.
    /// - Denied: returns `fallback()`, or without one throws `BreakerOpenError` with the state and
    ///   retry-after. While a breaker is known open (a deny seen from breakerd, and no event for it
    ///   since), the deny is local and costs no round trip.
    /// - No breakerd answers: `configuration.whenUnavailable` decides — a local breaker, allow
    ///   (nothing reported), or deny. Errors breakerd answers with (`-NOAUTH`, `-NOPERM`, `-ERR`) are
    ///   thrown as `BreakerClientError`: they are mistakes to fix, not outages to ride out.
    public func run<T: Sendable>(
        _ breaker: String,
        timeout: Duration? = nil,
        ignore: (@Sendable (any Error) -> Bool)? = nil,
        isFailure: (@Sendable (T) -> Bool)? = nil,
        fallback: (@Sendable () async throws -> T)? = nil,
        operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let name = try BreakerName(breaker).value
        startWatchingEvents()

        func denied(_ state: BreakerState, _ retryAfter: Duration, _ source: DecisionSource)
            async throws -> T
        {
            if let fallback { return try await fallback() }
            throw BreakerOpenError(breaker: name, state: state, retryAfter: retryAfter, source: source)
        }

        if configuration.cachesOpenState, let known = openStates.deny(name) {
            return try await denied(known.state, known.retryAfter, .openStateCache)
        }

        let ticket: RunTicket
        do {
            let acquisition = try await acquire(name)
            switch acquisition.decision {
            case .permit(let permit, _): ticket = .remote(permit)
            case .deny(let state, let retry):
                return try await denied(state, .milliseconds(retry), acquisition.source)
            }
        } catch let error as BreakerClientError where error.isUnavailable {
            logger.debug("breakerd unavailable", metadata: ["breaker": "\(name)", "error": "\(error)"])
            switch configuration.whenUnavailable {
            case .allow:
                ticket = .none
            case .deny:
                return try await denied(.open, .seconds(1), .unavailablePolicy)
            case .local:
                switch localBreakers!.acquire(name) {
                case .permit(let permit, _): ticket = .local(permit)
                case .deny(let state, let retry):
                    return try await denied(state, .milliseconds(retry), .unavailablePolicy)
                }
            }
        }

        let started = ContinuousClock.now
        let result: Result<T, any Error>
        do {
            result = .success(try await Self.call(name, timeout: timeout, operation))
        } catch {
            result = .failure(error)
        }
        let latency = started.duration(to: .now)
        let outcome: Outcome
        switch result {
        case .success(let value): outcome = isFailure?(value) == true ? .failure : .success
        case .failure(let error as BreakerOperationTimeout) where error.breaker == name:
            outcome = .failure
        case .failure(let error):
            outcome = ignore?(error) == true ? .ignore : configuration.classifyError(error)
        }

        switch ticket {
        case .remote(let permit):
            let logger = self.logger
            reports.add {
                do {
                    try await self.report(name, permit: permit, outcome: outcome, latency: latency)
                } catch {
                    logger.debug("report failed", metadata: ["breaker": "\(name)", "error": "\(error)"])
                }
            }
        case .local(let permit):
            localBreakers?.report(name, permit: permit, outcome: outcome, latencyMs: latency.milliseconds)
        case .none:
            break
        }
        return try result.get()
    }

    /// Where a permitted call's outcome goes: breakerd, the local breaker, or nowhere (`allow`).
    enum RunTicket {
        case remote(String)
        case local(String)
        case none
    }

    /// Runs `operation`, abandoning it at `timeout`: it is cancelled and the call returns at once,
    /// whether or not the operation heeds its cancellation.
    static func call<T: Sendable>(
        _ name: String, timeout: Duration?, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard let timeout else { return try await operation() }
        let work = Task { try await operation() }
        let once = ResumeOnce<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<T, any Error>) in
                once.set(continuation)
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    guard !Task.isCancelled else { return }
                    work.cancel()
                    once.take()?.resume(throwing: BreakerOperationTimeout(breaker: name, timeout: timeout))
                }
                Task {
                    let r = await work.result
                    timer.cancel()
                    once.take()?.resume(with: r)
                }
            }
        } onCancel: {
            work.cancel()
        }
    }
}

/// A continuation resumed by whichever of two tasks finishes first.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func set(_ c: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = c } }
    func take() -> CheckedContinuation<T, any Error>? { continuation.withLock { $0.take() } }
}
