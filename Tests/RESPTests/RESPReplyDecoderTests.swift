import NIOCore
import NIOTestUtils
import RESP
import Testing

/// Every reply decoded from `chunks` fed one after another.
private func decodeReplies(_ chunks: [ByteBuffer], decoder: RESPReplyDecoder = .init()) throws
    -> [RESPValue]
{
    let processor = NIOSingleStepByteToMessageProcessor(decoder)
    var values: [RESPValue] = []
    for chunk in chunks {
        try processor.process(buffer: chunk) { values.append($0) }
    }
    return values
}

private func decodeReplies(_ text: String, decoder: RESPReplyDecoder = .init()) throws
    -> [RESPValue]
{
    try decodeReplies([ByteBuffer(string: text)], decoder: decoder)
}

/// A sample of every type, including nesting.
private let samples: [RESPValue] = [
    .simpleString("OK"),
    .simpleString(""),
    .error("ERR unknown command 'X', with args beginning with: "),
    .integer(0),
    .integer(.min),
    .integer(.max),
    .bulk("hello"),
    .bulk(""),
    .bulk("a\r\nb"),
    .null,
    .nullArray,
    .array([.nullArray, .null]),
    .array([]),
    .array([.integer(1), .bulk("two"), .null, .array([.simpleString("deep")])]),
    .map([
        (.bulk("server"), .bulk("breakerd")), (.bulk("proto"), .integer(3)),
        (.bulk("modules"), .array([])),
    ]),
    .map([]),
    .set([.bulk("a"), .bulk("b")]),
    .double(1.5),
    .double(-0.001),
    .double(1e300),
    .double(.infinity),
    .double(-.infinity),
    .double(.nan),
    .boolean(true),
    .boolean(false),
    .push([.bulk("message"), .bulk("breaker:payments"), .bulk("open")]),
    .verbatim("# Server\r\nloading:0\r\n"),
    .verbatim(""),
]

/// What a RESP3 round trip makes of a value: RESP3 has a single null, so a null array comes back as `.null`.
private func resp3Form(_ value: RESPValue) -> RESPValue {
    switch value {
    case .nullArray: return .null
    case .array(let elements): return .array(elements.map(resp3Form))
    case .set(let elements): return .set(elements.map(resp3Form))
    case .push(let elements): return .push(elements.map(resp3Form))
    case .map(let pairs): return .map(pairs.map { (resp3Form($0.0), resp3Form($0.1)) })
    default: return value
    }
}

/// What a RESP2 connection makes of a RESP3 value.
private func downgraded(_ value: RESPValue) -> RESPValue {
    switch value {
    case .map(let pairs): return .array(pairs.flatMap { [downgraded($0.0), downgraded($0.1)] })
    case .set(let elements), .push(let elements), .array(let elements):
        return .array(elements.map(downgraded))
    case .double(let value):
        return .bulk(value.isNaN ? "nan" : value.isInfinite ? (value < 0 ? "-inf" : "inf") : "\(value)")
    case .boolean(let value): return .integer(value ? 1 : 0)
    case .verbatim(let text): return .bulk(text)
    default: return value
    }
}

private func encodedBuffer(_ value: RESPValue, _ version: RESPVersion) -> ByteBuffer {
    var buffer = ByteBuffer()
    value.encode(into: &buffer, version: version)
    return buffer
}

@Suite("RESPReplyDecoder")
struct RESPReplyDecoderTests {
    @Test func roundTripsEveryTypeInRESP3() throws {
        for value in samples {
            #expect(try decodeReplies([encodedBuffer(value, .resp3)]) == [resp3Form(value)])
        }
        #expect(resp3Form(.array([.nullArray])) == .array([.null]))
        #expect(try decodeReplies("*1\r\n_\r\n") == [.array([.null])])
    }

    @Test func roundTripsToTheDowngradedFormInRESP2() throws {
        #expect(downgraded(.double(1.5)) == .bulk("1.5"))
        for value in samples {
            #expect(try decodeReplies([encodedBuffer(value, .resp2)]) == [downgraded(value)])
        }
        #expect(try decodeReplies([encodedBuffer(.double(2), .resp2)]) == [.bulk("2")])
    }

    @Test(arguments: [RESPVersion.resp2, .resp3])
    func verifierAcceptsEveryType(version: RESPVersion) throws {
        let pairs = samples.map { value in
            (encodedBuffer(value, version), [version == .resp3 ? resp3Form(value) : downgraded(value)])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { RESPReplyDecoder() }
    }

    @Test func partialReplyWaitsWithoutConsuming() throws {
        var decoder = RESPReplyDecoder()
        let whole = encodedBuffer(
            .array([.bulk("hello"), .map([(.integer(1), .double(2.5))])]), .resp3)
        var buffer = ByteBuffer()
        for byte in whole.readableBytesView.dropLast() {
            buffer.writeInteger(byte)
            #expect(try decoder.decode(buffer: &buffer) == nil)
            #expect(buffer.readerIndex == 0)
        }
        buffer.writeString("\n:7\r")
        #expect(
            try decoder.decode(buffer: &buffer)
                == .array([.bulk("hello"), .map([(.integer(1), .double(2.5))])]))
        #expect(String(buffer: buffer) == ":7\r")
        #expect(try decoder.decode(buffer: &buffer) == nil)
    }

    @Test func pipelinedRepliesComeInOrder() throws {
        #expect(
            try decodeReplies("+OK\r\n:1\r\n$-1\r\n*-1\r\n_\r\n") == [
                .simpleString("OK"), .integer(1), .null, .nullArray, .null,
            ])
    }

    @Test func otherRESP3Types() throws {
        #expect(try decodeReplies("!9\r\nERR x\r\nyz\r\n") == [.error("ERR x\r\nyz")])
        #expect(try decodeReplies("=8\r\nmkd:# hi\r\n") == [.verbatim("# hi")])
        #expect(
            try decodeReplies("(-3492890328409238509324850943850943825024385\r\n") == [
                .bulk("-3492890328409238509324850943850943825024385")
            ])
        #expect(
            try decodeReplies(":+5\r\n,-1.5e-3\r\n,.5\r\n") == [
                .integer(5), .double(-0.0015), .double(0.5),
            ])
    }

    @Test func attributesAreSkipped() throws {
        #expect(
            try decodeReplies("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:5\r\n") == [
                .integer(5)
            ])
        #expect(
            try decodeReplies("*2\r\n|0\r\n:1\r\n|1\r\n+a\r\n+b\r\n:2\r\n") == [
                .array([.integer(1), .integer(2)])
            ])
        #expect(try decodeReplies("|0\r\n|0\r\n") == [])
        let chain = String(repeating: "|0\r\n", count: 100_000) + ":1\r\n"
        #expect(try decodeReplies(chain) == [.integer(1)])
    }

    @Test func depthIsCapped() throws {
        func nested(_ depth: Int) -> String { String(repeating: "*1\r\n", count: depth) + ":1\r\n" }
        #expect(try decodeReplies(nested(64)).count == 1)
        #expect(throws: RESPProtocolError.replyTooDeep) { try decodeReplies(nested(65)) }
        let shallow = RESPReplyDecoder(maxDepth: 2)
        #expect(try decodeReplies("%1\r\n:1\r\n*1\r\n:2\r\n", decoder: shallow).count == 1)
        #expect(throws: RESPProtocolError.replyTooDeep) {
            try decodeReplies("%1\r\n:1\r\n*1\r\n~0\r\n", decoder: shallow)
        }
        // The cap applies before the elements arrive, so a deep partial reply fails without waiting.
        #expect(throws: RESPProtocolError.replyTooDeep) {
            try decodeReplies(String(repeating: "*1\r\n", count: 65))
        }
    }

    @Test func sizesAreCapped() throws {
        let small = RESPReplyDecoder(maxBulkBytes: 4, maxElements: 2, maxLineBytes: 8)
        #expect(try decodeReplies("$4\r\nabcd\r\n", decoder: small) == [.bulk("abcd")])
        #expect(throws: RESPProtocolError.replyTooBig) { try decodeReplies("$5\r\n", decoder: small) }
        #expect(throws: RESPProtocolError.replyTooBig) { try decodeReplies("!5\r\n", decoder: small) }
        #expect(try decodeReplies("%2\r\n", decoder: small) == [])
        #expect(throws: RESPProtocolError.replyTooBig) { try decodeReplies("*3\r\n", decoder: small) }
        #expect(try decodeReplies("+1234567\r\n", decoder: small) == [.simpleString("1234567")])
        #expect(throws: RESPProtocolError.replyTooBig) {
            try decodeReplies("+12345678", decoder: small)
        }
        #expect(throws: RESPProtocolError.replyTooBig) {
            try decodeReplies("+12345678\r\n", decoder: small)
        }
    }

    @Test(
        arguments: [
            ("?x\r\n", RESPProtocolError.unknownReplyType(UInt8(ascii: "?"))),
            ("hello\r\n", .unknownReplyType(UInt8(ascii: "h"))),
            (":abc\r\n", .invalidReplyValue),
            (":\r\n", .invalidReplyValue),
            (":99999999999999999999\r\n", .invalidReplyValue),
            ("#x\r\n", .invalidReplyValue),
            ("#\r\n", .invalidReplyValue),
            ("_x\r\n", .invalidReplyValue),
            (",abc\r\n", .invalidReplyValue),
            (",0x1p3\r\n", .invalidReplyValue),
            (",infinity\r\n", .invalidReplyValue),
            ("(12a\r\n", .invalidReplyValue),
            ("(\r\n", .invalidReplyValue),
            ("=2\r\nab\r\n", .invalidReplyValue),
            ("=4\r\ntxt-\r\n", .invalidReplyValue),
            ("+OK\rX", .invalidReplyValue),
            ("$-2\r\n", .invalidReplyLength),
            ("$x\r\n", .invalidReplyLength),
            ("!-1\r\n", .invalidReplyLength),
            ("$?\r\n", .invalidReplyLength),
            ("*?\r\n", .invalidReplyLength),
            ("%-1\r\n", .invalidReplyLength),
            ("~-1\r\n", .invalidReplyLength),
            ("*-2\r\n", .invalidReplyLength),
            ("$3\r\nabcd\r\n", .bulkNotTerminated),
        ] as [(String, RESPProtocolError)])
    func garbageIsRejected(input: String, error: RESPProtocolError) {
        #expect(throws: error) { try decodeReplies(input) }
        let bytes = ByteBuffer(string: input).readableBytesView.map { ByteBuffer(bytes: [$0]) }
        #expect(throws: error) { try decodeReplies(bytes) }
    }

    @Test func redisHelloReply() throws {
        let reply =
            "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
            + "$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
            + "$7\r\nmodules\r\n*0\r\n"
        let value = try #require(try decodeReplies(reply).first)
        guard case .map(let pairs) = value else {
            Issue.record("not a map: \(value)")
            return
        }
        #expect(pairs.count == 7)
        #expect(pairs.first { $0.0 == .bulk("proto") }?.1 == .integer(3))
    }

    @Test func leftoverPartialReplyIsDroppedAtEOF() throws {
        let processor = NIOSingleStepByteToMessageProcessor(RESPReplyDecoder())
        var values: [RESPValue] = []
        try processor.process(buffer: ByteBuffer(string: "+OK\r\n*2\r\n:1\r\n")) { values.append($0) }
        try processor.finishProcessing(seenEOF: true) { values.append($0) }
        #expect(values == [.simpleString("OK")])
        #expect(processor.unprocessedBytes == 0)
    }
}
