import RESP

/// What one connection has told the server about itself. Commands of one connection run one at a
/// time, so the session travels by value from request to request with no lock.
struct ConnectionSession: Sendable {
    let id: Int
    /// The peer's `host:port`, for actor strings and logs.
    let peer: String
    var version: RESPVersion = .resp2
    var role: AccessRole
    var name: String = ""
    /// Channels exactly as the client spelled them, in subscription order.
    var channels: [String] = []

    init(id: Int, peer: String, role: AccessRole) {
        self.id = id
        self.peer = peer
        self.role = role
    }

    var isSubscribed: Bool { !channels.isEmpty }

    /// Who did an operator's action, as one word for event lines: `<user>@<addr>/<clientname>`.
    var actor: String { "\(role.user)@\(peer)/\(name.isEmpty ? "-" : name)" }
}
