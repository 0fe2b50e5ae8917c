/// Where a Redis server is and how to log in to it, parsed from a `redis://` or `unix://` URL.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    public enum Address: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    public var username: String?
    public var password: String?
    public var database: Int

    public init(address: Address, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]` or `unix://[[user]:password@]/path[?db=N]`.
    public init(url: String) throws(RedisError) {
        func bad(_ why: String) -> RedisError {
            RedisError(.other, "invalid Redis URL '\(url)': \(why)")
        }
        var rest: Substring
        let isUnix: Bool
        if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
            isUnix = false
        } else if url.hasPrefix("unix://") {
            rest = url.dropFirst("unix://".count)
            isUnix = true
        } else {
            throw bad("expected redis://host:port[/db] or unix:///path")
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : Self.percentDecoded(user)
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                // redis://secret@host means a password for the default user, as redis-cli reads it.
                password = Self.percentDecoded(credentials)
            }
        }

        var database = 0
        if isUnix {
            var path = rest
            if let q = rest.firstIndex(of: "?") {
                path = rest[..<q]
                for pair in rest[rest.index(after: q)...].split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2, kv[0] == "db" {
                        guard let db = Int(kv[1]), db >= 0 else { throw bad("db must be a number") }
                        database = db
                    }
                }
            }
            guard path.hasPrefix("/") else { throw bad("a unix socket path must be absolute") }
            self.init(address: .unix(path: String(path)), username: username, password: password, database: database)
            return
        }

        var hostPort = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { throw bad("the database must be a number") }
                database = n
            }
        }
        var host = String(hostPort)
        var port = 6379
        if hostPort.hasPrefix("[") {
            // [::1]:6379
            guard let close = hostPort.firstIndex(of: "]") else { throw bad("unclosed '['") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw bad("bad port") }
                port = p
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                throw bad("bad port")
            }
            port = p
        }
        guard !host.isEmpty else { throw bad("no host") }
        self.init(address: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    /// The URL without its password, fit for logs.
    public var description: String {
        let user = username.map { "\($0):***@" } ?? (password != nil ? ":***@" : "")
        switch address {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(user)\(h):\(port)" + (database != 0 ? "/\(database)" : "")
        case .unix(let path):
            return "unix://\(user)\(path)" + (database != 0 ? "?db=\(database)" : "")
        }
    }

    private static func percentDecoded(_ s: Substring) -> String {
        guard s.contains("%") else { return String(s) }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
