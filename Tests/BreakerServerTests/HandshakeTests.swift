import BreakerServerTestSupport
import NIOCore
import RESP
import Testing

/// What client libraries send first: PING, HELLO, AUTH, CLIENT, SELECT, INFO, COMMAND, QUIT.
@Suite struct HandshakeTests {
    @Test func pingHelloClientSelectInfoCommandQuit() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        #expect(try await c.command("PING") == .simpleString("PONG"))
        #expect(try await c.command("PING", "hi") == .bulk("hi"))

        let hello = try await c.command("HELLO", "3")
        guard case .map(let pairs) = hello else {
            Issue.record("HELLO 3 answered \(hello)")
            return
        }
        let fields = Dictionary(uniqueKeysWithValues: pairs.map { ($0.0.text ?? "", $0.1) })
        #expect(fields["proto"] == .integer(3))
        #expect(fields["server"] == .bulk("breakerd"))
        #expect(fields["mode"] == .bulk("standalone"))
        #expect(fields["role"] == .bulk("master"))
        #expect(fields["modules"] == .array([]))

        #expect(try await c.command("HELLO", "2").elements?.count == 14)
        #expect(try await c.command("HELLO", "4") == .error("NOPROTO unsupported protocol version"))
        #expect(try await c.command("CLIENT", "SETNAME", "ops") == .simpleString("OK"))
        #expect(try await c.command("CLIENT", "GETNAME") == .bulk("ops"))
        #expect(try await c.command("CLIENT", "SETNAME", "two words") == .error("ERR Client names cannot contain spaces, newlines or special characters."))
        #expect(try await c.command("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == .simpleString("OK"))
        guard case .integer = try await c.command("CLIENT", "ID") else {
            Issue.record("CLIENT ID is not an integer")
            return
        }
        #expect(try await c.command("CLIENT", "TRACKING", "on") == .error("ERR unknown subcommand 'TRACKING'. Try CLIENT HELP."))
        #expect(try await c.command("SELECT", "0") == .simpleString("OK"))
        #expect(try await c.command("SELECT", "1") == .error("ERR DB index is out of range"))
        let info = try #require(try await c.command("INFO").text)
        #expect(info.contains("loading:0\r\n"))
        #expect(info.contains("store:up\r\n"))
        #expect(info.contains("connected_clients:1\r\n"))
        let docs = try #require(try await c.command("COMMAND", "DOCS").elements)
        #expect(docs.contains(.bulk("acquire")) && docs.contains(.bulk("report")) && docs.count == 18)
        #expect(try await c.command("COMMAND", "DOCS", "ACQUIRE").elements?.first == .bulk("acquire"))
        #expect(try await c.command("COMMAND") == .array([]))
        #expect(try await c.command("QUIT") == .simpleString("OK"))
        #expect(try await c.isClosedByServer())
    }

    @Test func infoHonoursItsSectionsAndClientHasHelp() async throws {
        let t = try await TestServer.start()
        defer { Task { await t.stop() } }
        let c = try await t.connect()
        let stats = try #require(try await c.command("INFO", "stats").text)
        #expect(stats.hasPrefix("# Stats\r\n") && stats.contains("degraded_answers:"), "\(stats)")
        #expect(!stats.contains("# Server"))
        let two = try #require(try await c.command("INFO", "server", "CLIENTS").text)
        #expect(two.contains("# Server") && two.contains("# Clients") && !two.contains("# Store"), "\(two)")
        let everything = try #require(try await c.command("INFO", "all").text)
        #expect(everything.contains("# Server") && everything.contains("# Stats") && everything.contains("loading:0"))
        #expect(try await c.command("INFO", "nosuchsection") == .bulk(""))
        let help = try #require(try await c.command("CLIENT", "HELP").elements).compactMap(\.text)
        #expect(help.first?.hasPrefix("CLIENT <subcommand>") == true)
        for sub in ["GETNAME", "ID", "INFO", "SETNAME <name>", "HELP"] { #expect(help.contains(sub), "\(help)") }
    }
}
