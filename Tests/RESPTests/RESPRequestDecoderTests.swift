import NIOCore
import NIOEmbedded
import NIOTestUtils
import RESP
import Testing

/// A request from words, for expectations.
private func request(_ words: String..., inline: Bool = false) -> RESPRequest {
    RESPRequest(arguments: words.map { ByteBuffer(string: $0) }, isInline: inline)
}

/// Everything `decode` produces from `chunks` fed one after another, as a server would see it.
private func decodeAll(
    _ chunks: [String],
    limits: RESPLimits = .init()
) throws -> [RESPRequest] {
    try decodeAll(chunks.map { ByteBuffer(string: $0) }, limits: limits)
}

private func decodeAll(_ chunks: [ByteBuffer], limits: RESPLimits = .init()) throws -> [RESPRequest] {
    let processor = NIOSingleStepByteToMessageProcessor(RESPRequestDecoder(limits: limits))
    var requests: [RESPRequest] = []
    for chunk in chunks {
        try processor.process(buffer: chunk) { requests.append($0) }
    }
    return requests
}

/// The error decoding `input` throws, fed at once and byte by byte (both must agree).
private func decodingError(_ input: String, limits: RESPLimits = .init()) -> RESPProtocolError? {
    var errors: [RESPProtocolError?] = []
    for chunks in [[input], input.utf8.map { String(UnicodeScalar($0)) }] {
        do {
            _ = try decodeAll(chunks, limits: limits)
            errors.append(nil)
        } catch let error as RESPProtocolError {
            errors.append(error)
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }
    #expect(
        errors[0] == errors[1], "all-at-once and byte-by-byte disagree for \(input.debugDescription)")
    return errors[0]
}

@Suite("RESPRequestDecoder")
struct RESPRequestDecoderTests {
    @Test func verifierAcceptsMultibulkAndInlineFrames() throws {
        var binary = ByteBuffer(string: "*2\r\n$3\r\nSET\r\n$4\r\n")
        binary.writeBytes([0x00, 0x0D, 0x0A, 0xFF])
        binary.writeString("\r\n")
        var binaryArgument = ByteBuffer()
        binaryArgument.writeBytes([0x00, 0x0D, 0x0A, 0xFF])

        let pairs: [(ByteBuffer, [RESPRequest])] = [
            (
                ByteBuffer(string: "*2\r\n$7\r\nACQUIRE\r\n$8\r\npayments\r\n"),
                [request("ACQUIRE", "payments")]
            ),
            (
                ByteBuffer(string: "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"),
                [request("PING"), request("PING")]
            ),
            (ByteBuffer(string: "*0\r\n"), []),
            (ByteBuffer(string: "*-1\r\n*1\r\n$0\r\n\r\n"), [request("")]),
            (ByteBuffer(string: "PING\r\n"), [request("PING", inline: true)]),
            (
                ByteBuffer(string: "echo \"pay ments\" 'x'\n"),
                [request("echo", "pay ments", "x", inline: true)]
            ),
            (ByteBuffer(string: "\r\n   \n"), []),
            (
                binary,
                [RESPRequest(arguments: [ByteBuffer(string: "SET"), binaryArgument], isInline: false)]
            ),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { RESPRequestDecoder() }
    }

    @Test func multibulkFrameKeepsArgumentBytes() throws {
        let requests = try decodeAll(["*3\r\n$3\r\nSET\r\n$3\r\nk y\r\n$5\r\na\r\nb\n\r\n"])
        #expect(requests == [request("SET", "k y", "a\r\nb\n")])
        #expect(requests.first?.isInline == false)
        #expect(requests.first?.name == "SET")
    }

    @Test func pipelinedFramesAreAnsweredInOrder() throws {
        let input =
            "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
            + "*4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$8\r\nLIB-NAME\r\n$8\r\nredis-py\r\n"
            + "*0\r\n"
            + "PING\r\n"
            + "*1\r\n$4\r\nQUIT\r\n"
        let requests = try decodeAll([input])
        #expect(
            requests == [
                request("HELLO", "3"),
                request("CLIENT", "SETINFO", "LIB-NAME", "redis-py"),
                request("PING", inline: true),
                request("QUIT"),
            ]
        )
    }

    @Test func partialFrameWaitsWithoutConsuming() throws {
        var decoder = RESPRequestDecoder()
        var buffer = ByteBuffer(string: "*2\r\n$4\r\nECHO\r\n$5\r\nhel")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readerIndex == 0)
        buffer.writeString("lo\r")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readerIndex == 0)
        buffer.writeString("\nPI")
        #expect(try decoder.decode(buffer: &buffer) == request("ECHO", "hello"))
        #expect(buffer.readableBytes == 2)
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("NG\n")
        #expect(try decoder.decode(buffer: &buffer) == request("PING", inline: true))
        #expect(buffer.readableBytes == 0)
    }

    @Test func partialStateSurvivesCompaction() throws {
        var decoder = RESPRequestDecoder()
        var buffer = ByteBuffer(string: "PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nh")
        #expect(try decoder.decode(buffer: &buffer) == request("PING", inline: true))
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.discardReadBytes()
        buffer.writeString("i\r\n")
        #expect(try decoder.decode(buffer: &buffer) == request("ECHO", "hi"))
    }

    @Test func argumentsAreSlicesOfTheInput() throws {
        var decoder = RESPRequestDecoder()
        var buffer = ByteBuffer(string: "*1\r\n$4\r\nPING\r\n")
        let request = try #require(try decoder.decode(buffer: &buffer))
        let argumentStart = request.arguments[0].withUnsafeReadableBytes { $0.baseAddress }
        let inputStart = buffer.withVeryUnsafeBytes { $0.baseAddress }
        #expect(argumentStart == inputStart.map { $0 + 8 })
    }

    @Test func inlineLinesEndWithLFOrCRLF() throws {
        #expect(try decodeAll(["ACQUIRE payments\n"]) == [request("ACQUIRE", "payments", inline: true)])
        #expect(
            try decodeAll(["ACQUIRE payments\r\n"]) == [request("ACQUIRE", "payments", inline: true)])
        #expect(try decodeAll(["  ping\t  x  \r\n"]) == [request("ping", "x", inline: true)])
        // Only the CR right before the LF is a line ending; one elsewhere separates words.
        #expect(try decodeAll(["a\rb\r\r\n"]) == [request("a", "b", inline: true)])
    }

    @Test func emptyAndBlankLinesProduceNothing() throws {
        #expect(
            try decodeAll(["\n", "\r\n", "   \t \r\n", "PING\n"]) == [request("PING", inline: true)])
        #expect(try decodeAll(["\n\r\n \n"]).isEmpty)
    }

    @Test(
        arguments: [
            (#"SET "pay ments" x"#, ["SET", "pay ments", "x"]),
            (#"a"b c" d"#, ["ab c", "d"]),
            (#""""#, [""]),
            (#"'it''s'"#, []),
            (#"'it\'s'"#, ["it's"]),
            (#"'a\nb'"#, [#"a\nb"#]),
            (#""\n\r\t\b\a\\\"\q""#, ["\n\r\t\u{8}\u{7}\\\"q"]),
            (#""\x41\x4a\x6b" "\x4""#, ["AJk", "x4"]),
            (#"x"y" 'z'"#, ["xy", "z"]),
            ("\"a\"\t'b'", ["a", "b"]),
        ] as [(String, [String])])
    func inlineQuotesAndEscapes(line: String, words: [String]) throws {
        if words.isEmpty {
            #expect(decodingError(line + "\n") == .unbalancedQuotes)
        } else {
            #expect(
                try decodeAll([line + "\n"]) == [
                    RESPRequest(arguments: words.map { ByteBuffer(string: $0) }, isInline: true)
                ])
        }
    }

    @Test func inlineHexEscapeMakesBinaryBytes() throws {
        let requests = try decodeAll([#"SET "\x00\xff\xFE""# + "\n"])
        #expect(
            requests.first?.arguments.last.map { Array($0.readableBytesView) } == [0x00, 0xFF, 0xFE])
    }

    @Test func inlineStopsAtNULLikeRedis() throws {
        var buffer = ByteBuffer(string: "PING")
        buffer.writeBytes([0x00])
        buffer.writeString(" ignored\r\n")
        #expect(try decodeAll([buffer]) == [request("PING", inline: true)])
    }

    @Test(arguments: [
        #"SET "pay ments x"#,
        #"SET 'pay"#,
        #"SET "a"b"#,
        #"SET 'a'b"#,
        #"SET "abc\"#,
    ])
    func unbalancedQuotesAreRejected(line: String) {
        #expect(decodingError(line + "\r\n") == .unbalancedQuotes)
    }

    @Test func invalidMultibulkLengths() {
        #expect(decodingError("*x\r\n") == .invalidMultibulkLength)
        #expect(decodingError("*\r\n") == .invalidMultibulkLength)
        #expect(decodingError("*+1\r\n") == .invalidMultibulkLength)
        #expect(decodingError("*01\r\n") == .invalidMultibulkLength)
        #expect(decodingError("*1 \r\n") == .invalidMultibulkLength)
        #expect(decodingError("*1\rX") == .invalidMultibulkLength)
        #expect(decodingError("*99999999999999999999\r\n") == .invalidMultibulkLength)
    }

    @Test func multibulkElementMustStartWithDollar() {
        let error = decodingError("*1\r\n:4\r\n")
        #expect(error == .expectedDollar(got: UInt8(ascii: ":")))
        #expect(error?.message == "Protocol error: expected '$', got ':'")
        #expect(
            RESPProtocolError.expectedDollar(got: 0x07).message
                == #"Protocol error: expected '$', got '\x07'"#)
    }

    @Test func invalidBulkLengths() {
        #expect(decodingError("*1\r\n$x\r\n") == .invalidBulkLength)
        #expect(decodingError("*1\r\n$-1\r\n") == .invalidBulkLength)
        #expect(decodingError("*1\r\n$\r\n") == .invalidBulkLength)
        #expect(decodingError("*1\r\n$2\rxx") == .invalidBulkLength)
    }

    @Test func bulkDataMustEndWithCRLF() {
        #expect(decodingError("*1\r\n$4\r\nPINGxx") == .bulkNotTerminated)
        #expect(decodingError("*1\r\n$4\r\nPING\n\n") == .bulkNotTerminated)
    }

    @Test func argumentCountLimit() throws {
        let limits = RESPLimits(maxArguments: 3)
        #expect(try decodeAll(["*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"], limits: limits).count == 1)
        #expect(decodingError("*4\r\n", limits: limits) == .invalidMultibulkLength)
        #expect(try decodeAll(["a b c\n"], limits: limits) == [request("a", "b", "c", inline: true)])
        #expect(decodingError("a b c d\n", limits: limits) == .tooManyArguments)
        #expect(decodingError("*1025\r\n") == .invalidMultibulkLength)
    }

    @Test func bulkLengthLimit() throws {
        let limits = RESPLimits(maxBulkBytes: 5)
        #expect(try decodeAll(["*1\r\n$5\r\nhello\r\n"], limits: limits) == [request("hello")])
        #expect(decodingError("*1\r\n$6\r\n", limits: limits) == .invalidBulkLength)
        #expect(decodingError("*1\r\n$524289\r\n") == .invalidBulkLength)
    }

    @Test func inlineLengthLimit() throws {
        let limits = RESPLimits(maxInlineBytes: 8)
        #expect(try decodeAll(["12345678\r\n"], limits: limits) == [request("12345678", inline: true)])
        #expect(try decodeAll(["12345678\n"], limits: limits) == [request("12345678", inline: true)])
        #expect(decodingError("123456789\r\n", limits: limits) == .tooBigInlineRequest)
        // Without a newline yet, more bytes than the limit are refused at once rather than buffered.
        #expect(decodingError("123456789", limits: limits) == .tooBigInlineRequest)
        #expect(decodingError("12345678", limits: limits) == nil)
        // A CR waiting for its LF is a line ending, not a ninth byte, even when it arrives alone.
        #expect(decodingError("12345678\r\n", limits: limits) == nil)
    }

    @Test func defaultInlineLimitIs64KiB() throws {
        let atLimit = String(repeating: "a", count: 64 * 1024)
        #expect(try decodeAll([atLimit + "\r\n"]).first?.arguments.first?.readableBytes == 64 * 1024)
        #expect(throws: RESPProtocolError.tooBigInlineRequest) { try decodeAll([atLimit + "a"]) }
        #expect(throws: RESPProtocolError.tooBigInlineRequest) { try decodeAll([atLimit + "a\r\n"]) }
    }

    @Test func headerLinesWithoutCRAreCapped() throws {
        let limits = RESPLimits(maxInlineBytes: 8)
        #expect(decodingError("*" + String(repeating: "1", count: 7), limits: limits) == nil)
        #expect(
            decodingError("*" + String(repeating: "1", count: 8), limits: limits)
                == .tooBigMultibulkCountString)
        #expect(decodingError("*1\r\n$" + String(repeating: "1", count: 7), limits: limits) == nil)
        #expect(
            decodingError("*1\r\n$" + String(repeating: "1", count: 8), limits: limits)
                == .tooBigBulkCountString
        )
    }

    @Test func leftoverPartialFrameIsDroppedAtEOF() throws {
        let processor = NIOSingleStepByteToMessageProcessor(RESPRequestDecoder())
        var requests: [RESPRequest] = []
        try processor.process(buffer: ByteBuffer(string: "PING\r\n*2\r\n$4\r\nECHO\r\n")) {
            requests.append($0)
        }
        try processor.finishProcessing(seenEOF: true) { requests.append($0) }
        #expect(requests == [request("PING", inline: true)])
        #expect(processor.unprocessedBytes == 0)
    }

    @Test func errorReachesThePipelineAfterEarlierCommands() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPRequestDecoder()))
        #expect(throws: RESPProtocolError.unbalancedQuotes) {
            try channel.writeInbound(ByteBuffer(string: "PING\r\nSET \"a b\r\n*1\r\n$4\r\nPING\r\n"))
        }
        #expect(try channel.readInbound(as: RESPRequest.self) == request("PING", inline: true))
        #expect(try channel.readInbound(as: RESPRequest.self) == nil)
        _ = try? channel.finish()
    }

    @Test func errorMessagesMatchRedis() {
        #expect(
            RESPProtocolError.unbalancedQuotes.message == "Protocol error: unbalanced quotes in request")
        #expect(
            RESPProtocolError.tooBigInlineRequest.message == "Protocol error: too big inline request")
        #expect(
            RESPProtocolError.invalidMultibulkLength.message == "Protocol error: invalid multibulk length"
        )
        #expect(RESPProtocolError.invalidBulkLength.message == "Protocol error: invalid bulk length")
        #expect(
            RESPProtocolError.tooBigMultibulkCountString.message
                == "Protocol error: too big mbulk count string")
        #expect(
            RESPProtocolError.invalidBulkLength.description == RESPProtocolError.invalidBulkLength.message
        )
    }

    @Test func requestConveniences() {
        var invalid = ByteBuffer()
        invalid.writeBytes([0x61, 0xFF])
        let request = RESPRequest(arguments: [ByteBuffer(string: "acquire"), invalid], isInline: false)
        #expect(request.name == "ACQUIRE")
        #expect(request.string(at: 0) == "acquire")
        #expect(request.string(at: 1) == "a\u{FFFD}")
        #expect(request.string(at: 2) == nil)
        #expect(request.string(at: -1) == nil)
        #expect(RESPRequest(arguments: []).name == "")
    }
}
