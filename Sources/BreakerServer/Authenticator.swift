/// Checks AUTH (and HELLO's AUTH clause) against the configured secrets.
///
/// With no secret at all every connection starts as `admin`. With only `adminPassword`, connections
/// start as `replica` (replicas need no secret) and AUTH admin raises them; with `password`, they
/// start with no role at all and must AUTH before anything but PING, HELLO, AUTH and QUIT.
struct Authenticator: Sendable {
    let password: String?
    let adminPassword: String?

    init(password: String?, adminPassword: String?) {
        self.password = password
        self.adminPassword = adminPassword
    }

    /// The role a new connection has before any AUTH.
    var initialRole: AccessRole {
        if password != nil { return .none }
        if adminPassword != nil { return .replica }
        return .admin
    }

    /// The role `user` (nil: `default`) proves with `secret`, or nil for a wrong pair.
    func authenticate(user: String?, secret: String, current: AccessRole) -> AccessRole? {
        let user = user ?? "default"
        switch user {
        case "default":
            guard let password else {
                // The default user has no password: AUTH changes nothing (and must not lower admin).
                return current == .none ? initialRole : current
            }
            return Self.equal(secret, password) ? .replica : nil
        case "admin":
            guard let adminPassword else {
                return password == nil ? .admin : nil
            }
            return Self.equal(secret, adminPassword) ? .admin : nil
        default:
            return nil
        }
    }

    /// Compares in time that depends only on the lengths, so a wrong guess tells nothing by its speed.
    private static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }
}
