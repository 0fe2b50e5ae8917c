/// What a connection has proved with AUTH, and so what it may run.
public enum AccessRole: Sendable, Hashable {
    /// Has not authenticated while secrets are configured: only PING, HELLO, AUTH and QUIT.
    case none
    /// The `default` user: ACQUIRE, REPORT and every read.
    case replica
    /// The `admin` user: also CONFIG SET, FORCE and RESET.
    case admin

    /// The user name Redis clients know the role by.
    public var user: String {
        switch self {
        case .none, .replica: return "default"
        case .admin: return "admin"
        }
    }
}
