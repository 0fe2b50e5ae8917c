import Foundation
import Testing
import Yams

/// There is no Docker engine on the build machines, so the compose file and Dockerfile are
/// checked here for what they must say, not run.
@Suite struct ComposeFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func composeRunsRedisAndThreeReplicasSharingIt() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        let doc = try #require(try Yams.load(yaml: text) as? [String: Any])
        let services = try #require(doc["services"] as? [String: Any])
        #expect(Set(services.keys) == ["redis", "breakerd-1", "breakerd-2", "breakerd-3"])
        let redis = try #require(services["redis"] as? [String: Any])
        #expect((redis["image"] as? String)?.hasPrefix("redis") == true)
        var hostPorts = Set<String>()
        for name in ["breakerd-1", "breakerd-2", "breakerd-3"] {
            let s = try #require(services[name] as? [String: Any])
            #expect(s["build"] as? String == ".", "\(name) builds the Dockerfile")
            let env = try #require(s["environment"] as? [String: Any])
            #expect(env["BREAKERD_REDIS"] as? String == "redis://redis:6379", "\(name) shares the one Redis")
            #expect((env["BREAKERD_LISTEN"] as? String)?.hasSuffix(":7420") == true)
            // Listening beyond loopback needs secrets.
            #expect(env["BREAKERD_PASSWORD"] != nil && env["BREAKERD_ADMIN_PASSWORD"] != nil)
            let depends = try #require(s["depends_on"] as? [String: Any])
            #expect(depends["redis"] != nil)
            for p in (s["ports"] as? [String]) ?? [] { hostPorts.insert(String(p.split(separator: ":")[0])) }
        }
        #expect(hostPorts.count == 3, "each replica on its own host port")
    }

    @Test func dockerfileBuildsTheBreakerdExecutable() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        #expect(text.contains("libhiredis-dev"))
        #expect(text.contains("swift build -c release --product breakerd"))
        #expect(text.contains("ENTRYPOINT [\"/usr/local/bin/breakerd\"]"))
        // The runtime image needs hiredis and redis-server (for the embedded default).
        #expect(text.contains("libhiredis0.14") && text.contains("redis-server"))
    }
}
