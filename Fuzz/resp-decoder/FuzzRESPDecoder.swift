import NIOCore
import RESP

// libFuzzer's entry point for RESP's two decoders (built only by scripts/fuzz, with -sanitize=fuzzer).
//
// Besides "no crash, no sanitizer report", each input is checked against what the decoders promise:
// - a request stream decodes to the same requests and the same error whether it arrives at once,
//   byte by byte or in chunks of 7 (the reader index never moves past a partial frame), under the
//   default limits and under small ones that the fuzzer can reach;
// - every request has a name, no more arguments than the limit and no bulk over the limit;
// - a multibulk request re-encoded as a multibulk frame decodes to itself;
// - replies decode the same whole and in pieces.
// A broken promise is a crash (precondition), which libFuzzer saves as a reproducer.

private let defaultLimits = RESPLimits()
/// Small enough that the fuzzer meets every limit within short inputs.
private let smallLimits = RESPLimits(maxInlineBytes: 48, maxArguments: 6, maxBulkBytes: 40)

/// What decoding a stream gave: the requests before any error, and the error.
private struct Outcome: Equatable {
    var requests: [RESPRequest] = []
    var error: RESPProtocolError?
    var otherError: String?
    /// Bytes of a partial frame dropped at EOF.
    var partialAtEOF = 0
}

private func decodeRequests(_ input: ByteBuffer, chunk: Int, limits: RESPLimits) -> Outcome {
    let processor = NIOSingleStepByteToMessageProcessor(RESPRequestDecoder(limits: limits))
    var outcome = Outcome()
    var rest = input
    do {
        while rest.readableBytes > 0 {
            let piece = rest.readSlice(length: min(chunk, rest.readableBytes))!
            try processor.process(buffer: piece) { outcome.requests.append($0) }
        }
        outcome.partialAtEOF = processor.unprocessedBytes
        try processor.finishProcessing(seenEOF: true) { outcome.requests.append($0) }
    } catch let error as RESPProtocolError {
        outcome.error = error
    } catch {
        outcome.otherError = "\(error)"
    }
    return outcome
}

/// Like Redis, a header or inline line over the limit is refused as soon as that many bytes are
/// there without its end; arriving whole, the same line is read and refused for what it says
/// (`*00000...` is an invalid length), or, when its CR came and its LF not yet, waits for the LF.
/// So which error comes may depend on the reads, and whether one comes only while a partial frame
/// is left at EOF; the requests before it never do.
private let arrivalDependent: Set<RESPProtocolError> = [
    .tooBigInlineRequest, .tooBigMultibulkCountString, .tooBigBulkCountString,
]

private func agree(_ a: Outcome, _ b: Outcome) -> Bool {
    guard a.requests == b.requests, a.otherError == b.otherError else { return false }
    if a.error == b.error { return true }
    switch (a.error, b.error) {
    case (let x?, let y?): return arrivalDependent.contains(x) || arrivalDependent.contains(y)
    case (let x?, nil): return arrivalDependent.contains(x) && b.partialAtEOF > 0
    case (nil, let y?): return arrivalDependent.contains(y) && a.partialAtEOF > 0
    case (nil, nil): return true
    }
}

private func checkRequests(_ input: ByteBuffer, limits: RESPLimits) {
    let whole = decodeRequests(input, chunk: max(1, input.readableBytes), limits: limits)
    precondition(whole.otherError == nil, "the request decoder threw a non-protocol error: \(whole.otherError!)")
    for chunk in [1, 7] where chunk < input.readableBytes {
        let pieces = decodeRequests(input, chunk: chunk, limits: limits)
        precondition(
            agree(pieces, whole),
            "requests decoded in chunks of \(chunk) differ from decoding at once: \(pieces) vs \(whole)")
    }
    for request in whole.requests {
        precondition(!request.arguments.isEmpty, "a decoded request has no arguments")
        precondition(request.arguments.count <= limits.maxArguments, "a request has more arguments than the limit")
        if !request.isInline {
            precondition(
                request.arguments.allSatisfy { $0.readableBytes <= limits.maxBulkBytes },
                "a multibulk argument is longer than the bulk limit")
            var frame = ByteBuffer()
            frame.writeString("*\(request.arguments.count)\r\n")
            for argument in request.arguments {
                frame.writeString("$\(argument.readableBytes)\r\n")
                frame.writeImmutableBuffer(argument)
                frame.writeString("\r\n")
            }
            let again = decodeRequests(frame, chunk: frame.readableBytes, limits: limits)
            precondition(
                again.requests == [request] && again.error == nil, "a re-encoded multibulk request did not decode to itself")
        }
    }
}

private func decodeReplies(_ input: ByteBuffer, chunk: Int) -> (values: [String], error: String?) {
    let processor = NIOSingleStepByteToMessageProcessor(
        RESPReplyDecoder(maxDepth: 8, maxBulkBytes: 256, maxElements: 64, maxLineBytes: 128))
    var values: [String] = []
    var rest = input
    do {
        while rest.readableBytes > 0 {
            let piece = rest.readSlice(length: min(chunk, rest.readableBytes))!
            try processor.process(buffer: piece) { values.append("\($0)") }
        }
        try processor.finishProcessing(seenEOF: true) { values.append("\($0)") }
    } catch {
        return (values, "\(error)")
    }
    return (values, nil)
}

private func checkReplies(_ input: ByteBuffer) {
    let whole = decodeReplies(input, chunk: max(1, input.readableBytes))
    // Measuring a partial reply again from its start on each read is quadratic: one byte at a time
    // only for short inputs.
    let chunk = input.readableBytes <= 512 ? 1 : 61
    if chunk < input.readableBytes {
        let pieces = decodeReplies(input, chunk: chunk)
        precondition(
            pieces.values == whole.values && pieces.error == whole.error,
            "replies decoded in chunks of \(chunk) differ from decoding at once")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPDecoders(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = ByteBuffer()
    if let start, count > 0 {
        input.writeBytes(UnsafeRawBufferPointer(start: start, count: count))
    }
    checkRequests(input, limits: defaultLimits)
    checkRequests(input, limits: smallLimits)
    checkReplies(input)
    return 0
}
