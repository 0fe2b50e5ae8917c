/// How ACQUIRE answers while Redis cannot (down, or past the store deadline).
public enum DegradedPolicy: String, Sendable, Hashable, CaseIterable {
    /// An in-process breaker per name, with the breaker's last known policy: this breakerd alone
    /// keeps protecting the dependency, from what its own clients report.
    case local
    /// Every ACQUIRE is permitted: availability over protection.
    case allow
    /// Every ACQUIRE is denied: protection over availability.
    case deny
}
