import Hiredis
import Testing

@Suite struct RedisEndpointTests {
    @Test func parsesTCPURLs() throws {
        let e = try RedisEndpoint(url: "redis://alice:s%40cret@cache.internal:6380/2")
        #expect(e.address == .tcp(host: "cache.internal", port: 6380))
        #expect(e.username == "alice")
        #expect(e.password == "s@cret")
        #expect(e.database == 2)
        #expect(e.description == "redis://alice:***@cache.internal:6380/2")

        let plain = try RedisEndpoint(url: "redis://127.0.0.1")
        #expect(plain.address == .tcp(host: "127.0.0.1", port: 6379))
        #expect(plain.password == nil && plain.database == 0)

        let passwordOnly = try RedisEndpoint(url: "redis://:pw@[::1]:7000")
        #expect(passwordOnly.address == .tcp(host: "::1", port: 7000))
        #expect(passwordOnly.username == nil && passwordOnly.password == "pw")
    }

    @Test func parsesUnixURLs() throws {
        let e = try RedisEndpoint(url: "unix:///run/redis.sock?db=3")
        #expect(e.address == .unix(path: "/run/redis.sock"))
        #expect(e.database == 3)
    }

    @Test(arguments: ["http://x", "redis://host:notaport", "redis://host:70000", "redis://host/x", "unix://relative", "redis://"])
    func refusesBadURLs(url: String) {
        #expect(throws: RedisError.self) { try RedisEndpoint(url: url) }
    }
}
