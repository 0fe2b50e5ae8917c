/// Where one breakerd listens.
public struct BreakerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `host:port`, `[v6]:port` or a bare `host` (port 7420).
    public init(parsing text: String) throws(BreakerClientError) {
        var host = Substring(text)
        var port = 7420
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .invalidAddress(text) }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else {
                    throw .invalidAddress(text)
                }
                port = p
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else { throw .invalidAddress(text) }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw .invalidAddress(text) }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
