import Foundation
import Logging
import Synchronization

/// Who may read what over HTTP (docs/OPERATIONS.md, "The lock"). Without an HTTP token everything
/// is open, which `HTTPConfiguration.validate()` allows on loopback only. With one, every path but
/// /healthz needs `Authorization: Bearer <token>` or basic auth as `admin` with the admin password
/// (or the token as the password, for a browser when no admin password is set). /metrics has its
/// own choice: the same credentials, its own token as well, or open.
struct HTTPAccess: Sendable {
    let token: [UInt8]?
    let adminPassword: [UInt8]?
    let metricsToken: [UInt8]?
    let metricsPublic: Bool

    init(_ c: HTTPConfiguration) {
        token = c.token.map { Array($0.utf8) }
        adminPassword = c.adminPassword.map { Array($0.utf8) }
        metricsToken = c.metricsToken.map { Array($0.utf8) }
        metricsPublic = c.metricsPublic
    }

    /// The challenge a refused request gets: Basic first, so a browser asks for the password and
    /// then sends it with the page's own fetch and EventSource requests.
    static let challenges = [
        ("WWW-Authenticate", #"Basic realm="breakerd", charset="UTF-8""#),
        ("WWW-Authenticate", #"Bearer realm="breakerd""#),
    ]

    /// Whether a request for `path` with this `Authorization` header (nil when absent) is let in.
    func allows(path: String, authorization: String?) -> Bool {
        if path == "/healthz" { return true }
        if path == "/metrics" {
            if metricsPublic { return true }
            if token == nil && metricsToken == nil { return true }
            if let metricsToken, bearer(authorization).map({ Self.same($0, metricsToken) }) == true { return true }
        } else if token == nil {
            return true
        }
        guard let token else { return false }
        if let presented = bearer(authorization) { return Self.same(presented, token) }
        if let (user, password) = basic(authorization), Self.same(user, Array("admin".utf8)) {
            // Both are compared, whichever matches, so the time taken says nothing about which.
            let admin = adminPassword.map { Self.same(password, $0) } ?? false
            let asToken = Self.same(password, token)
            return admin || asToken
        }
        return false
    }

    private func bearer(_ header: String?) -> [UInt8]? {
        guard let header, let (scheme, rest) = split(header), scheme == "bearer" else { return nil }
        return Array(rest.utf8)
    }

    private func basic(_ header: String?) -> ([UInt8], [UInt8])? {
        guard let header, let (scheme, rest) = split(header), scheme == "basic",
            let decoded = Data(base64Encoded: rest)
        else { return nil }
        let bytes = Array(decoded)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return (Array(bytes[..<colon]), Array(bytes[(colon + 1)...]))
    }

    private func split(_ header: String) -> (String, String)? {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return nil }
        return (
            trimmed[..<space].lowercased(), trimmed[trimmed.index(after: space)...].trimmingCharacters(in: .whitespaces)
        )
    }

    /// Compares two secrets in time that depends on the presented one's length only, never on
    /// where the first difference is.
    static func same(_ presented: [UInt8], _ secret: [UInt8]) -> Bool {
        guard !secret.isEmpty else { return false }
        var difference = UInt8(presented.count == secret.count ? 0 : 1)
        for i in 0..<presented.count {
            difference |= presented[i] ^ secret[i % secret.count]
        }
        return difference == 0 && !presented.isEmpty
    }
}

/// Logs refused HTTP requests at most once a second per peer address, so a client guessing tokens
/// cannot fill the log; the metric counts every one.
final class RefusalLog: Sendable {
    private let logger: Logger
    private let last = Mutex<[String: ContinuousClock.Instant]>([:])
    private let clock = ContinuousClock()
    /// Peers remembered at most; past it the memory starts afresh (a flood of addresses then logs
    /// a line per address once more, still at most once a second each).
    private let maxPeers = 4096

    init(logger: Logger) {
        self.logger = logger
    }

    func refused(peer: String, path: String) {
        let now = clock.now
        let due = last.withLock { seen -> Bool in
            if let t = seen[peer], now - t < .seconds(1) { return false }
            if seen.count >= maxPeers { seen.removeAll(keepingCapacity: true) }
            seen[peer] = now
            return true
        }
        if due {
            logger.warning(
                "http request refused: missing or wrong credentials",
                metadata: ["peer": "\(peer)", "path": "\(path.prefix(64))"])
        }
    }
}
