import NIOCore
import RESP
import Testing

/// The bytes `value` encodes to, as a String for readable failures.
func encoded(_ value: RESPValue, _ version: RESPVersion) -> String {
    var buffer = ByteBuffer()
    value.encode(into: &buffer, version: version)
    return String(decoding: buffer.readableBytesView, as: UTF8.self)
}

@Suite("RESPValue encoding")
struct RESPValueEncodingTests {
    @Test(
        arguments: [
            (RESPValue.simpleString("OK"), "+OK\r\n", "+OK\r\n"),
            (.simpleString("PERMIT t1 closed"), "+PERMIT t1 closed\r\n", "+PERMIT t1 closed\r\n"),
            (.error("ERR unknown command"), "-ERR unknown command\r\n", "-ERR unknown command\r\n"),
            (.integer(0), ":0\r\n", ":0\r\n"),
            (.integer(-42), ":-42\r\n", ":-42\r\n"),
            (.integer(.max), ":9223372036854775807\r\n", ":9223372036854775807\r\n"),
            (.integer(.min), ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"),
            (.bulk("hello"), "$5\r\nhello\r\n", "$5\r\nhello\r\n"),
            (.bulk(""), "$0\r\n\r\n", "$0\r\n\r\n"),
            (.bulk("a\r\nb"), "$4\r\na\r\nb\r\n", "$4\r\na\r\nb\r\n"),
            (.null, "$-1\r\n", "_\r\n"),
            (.nullArray, "*-1\r\n", "_\r\n"),
            (.array([]), "*0\r\n", "*0\r\n"),
            (
                .array([.integer(1), .bulk("a"), .null]), "*3\r\n:1\r\n$1\r\na\r\n$-1\r\n",
                "*3\r\n:1\r\n$1\r\na\r\n_\r\n"
            ),
            (
                .map([(.bulk("proto"), .integer(3)), (.bulk("modules"), .array([]))]),
                "*4\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
                "%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n"
            ),
            (.map([]), "*0\r\n", "%0\r\n"),
            (.set([.simpleString("a")]), "*1\r\n+a\r\n", "~1\r\n+a\r\n"),
            (.double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n"),
            (.double(1), "$1\r\n1\r\n", ",1\r\n"),
            (.double(-0.25), "$5\r\n-0.25\r\n", ",-0.25\r\n"),
            (.double(0.1), "$3\r\n0.1\r\n", ",0.1\r\n"),
            (.double(1e300), "$6\r\n1e+300\r\n", ",1e+300\r\n"),
            (.double(.infinity), "$3\r\ninf\r\n", ",inf\r\n"),
            (.double(-.infinity), "$4\r\n-inf\r\n", ",-inf\r\n"),
            (.double(.nan), "$3\r\nnan\r\n", ",nan\r\n"),
            (.boolean(true), ":1\r\n", "#t\r\n"),
            (.boolean(false), ":0\r\n", "#f\r\n"),
            (
                .push([.bulk("message"), .bulk("ch"), .bulk("hi")]),
                "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
                ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
            ),
            (.verbatim("hi there"), "$8\r\nhi there\r\n", "=12\r\ntxt:hi there\r\n"),
            (
                .array([.map([(.simpleString("k"), .set([.boolean(true)]))]), .double(2)]),
                "*2\r\n*2\r\n+k\r\n*1\r\n:1\r\n$1\r\n2\r\n",
                "*2\r\n%1\r\n+k\r\n~1\r\n#t\r\n,2\r\n"
            ),
        ] as [(RESPValue, String, String)])
    func exactBytes(value: RESPValue, resp2: String, resp3: String) {
        #expect(encoded(value, .resp2) == resp2)
        #expect(encoded(value, .resp3) == resp3)
    }

    @Test func lineRepliesStayOneLine() {
        #expect(encoded(.simpleString("a\r\nb\nc\rd"), .resp3) == "+a  b c d\r\n")
        #expect(encoded(.error("ERR bad\r\nthing"), .resp2) == "-ERR bad  thing\r\n")
    }

    @Test func bulkStringIsBinarySafe() {
        var bytes = ByteBuffer()
        bytes.writeBytes([0x00, 0xFF, 0x0D, 0x0A])
        var buffer = ByteBuffer()
        RESPValue.bulkString(bytes).encode(into: &buffer, version: .resp3)
        #expect(
            Array(buffer.readableBytesView) == Array("$4\r\n".utf8) + [0x00, 0xFF, 0x0D, 0x0A]
                + Array("\r\n".utf8))
    }

    @Test func encodingAppends() {
        var buffer = ByteBuffer(string: "x")
        RESPValue.integer(1).encode(into: &buffer, version: .resp2)
        RESPValue.simpleString("OK").encode(into: &buffer, version: .resp2)
        #expect(String(buffer: buffer) == "x:1\r\n+OK\r\n")
    }

    @Test func equality() {
        #expect(RESPValue.map([(.integer(1), .integer(2))]) == .map([(.integer(1), .integer(2))]))
        #expect(RESPValue.map([(.integer(1), .integer(2))]) != .map([(.integer(2), .integer(1))]))
        #expect(RESPValue.map([(.integer(1), .integer(2))]) != .map([]))
        #expect(RESPValue.array([.integer(1)]) != .set([.integer(1)]))
        #expect(RESPValue.array([.integer(1)]) != .push([.integer(1)]))
        #expect(RESPValue.null != .nullArray)
        #expect(RESPValue.double(.nan) == .double(.nan))
        #expect(RESPValue.bulk("a") == .bulkString(ByteBuffer(string: "a")))
        #expect(RESPValue.bulk("a") != .simpleString("a"))
    }
}
