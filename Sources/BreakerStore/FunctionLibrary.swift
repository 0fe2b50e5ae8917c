import Hiredis

/// The breaker rules as one Redis Functions library (Lua/breakerd.lua), loaded with
/// FUNCTION LOAD REPLACE and called with FCALL. Its name carries its version, so a later breakerd
/// with other functions loads beside it instead of replacing what running processes call.
enum FunctionLibrary {
    static let name = "breakerd_v2"
    static let source: [UInt8] = PackageResources.breakerd_lua
    /// The oldest Redis with FUNCTION LOAD and FCALL.
    static let minimumRedis = (major: 7, minor: 0)

    /// One function of the library.
    enum Function: String, Sendable {
        case acquire, report, fold, state, control

        /// The name FCALL takes.
        var name: String { "\(FunctionLibrary.name)_\(rawValue)" }
        /// Read-only functions are registered `no-writes` and called with FCALL_RO.
        var command: String { self == .state ? "FCALL_RO" : "FCALL" }
    }

    /// Whether an error reply says the function is not loaded (Redis restarted without
    /// persistence, FUNCTION FLUSH, a new node): `ERR Function not found`.
    static func isMissing(_ error: String) -> Bool {
        error.hasPrefix("ERR Function not found")
    }

    /// Checks the `redis_version` line of INFO server: FCALL needs Redis 7.0 or newer.
    static func checkVersion(info: String) throws(StoreError) {
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("redis_version:") }) else {
            throw StoreError(.redis, "INFO server did not say which Redis this is (no redis_version line)")
        }
        let version = line.dropFirst("redis_version:".count).trimmingCharacters(in: " \r")
        let parts = version.split(separator: ".").map { Int($0) }
        guard parts.count >= 2, let major = parts[0], let minor = parts[1] else {
            throw StoreError(.redis, "INFO server gave a redis_version breakerd cannot read: '\(version)'")
        }
        if (major, minor) < minimumRedis {
            throw StoreError(
                .redis,
                "breakerd needs Redis 7.0 or newer (it runs its rules as a Redis Functions library with FCALL); this Redis is \(version)")
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
