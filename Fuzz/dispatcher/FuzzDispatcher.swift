import BreakerServer
import BreakerStore
import Dispatch
import Foundation
import Hiredis
import Logging
import NIOCore
import RESP

#if canImport(Glibc)
    import Glibc
#endif

// libFuzzer's entry point for the whole request path: each input is written, as one client's bytes,
// to a breakerd server running in this process (the real decoder, ConnectionHandler and
// CommandDispatcher) against the real redis-server that scripts/fuzz starts (BREAKERD_FUZZ_REDIS).
// Coverage is counted in every thread, so the server's event loops and tasks guide the fuzzer.
//
// Besides "no crash, no sanitizer report", each input is checked against what breakerd promises:
// - once the client has sent everything (shutdown of its write side), breakerd answers what it can
//   and closes: EOF comes within 10 s, the connection is never held;
// - what it sent before a clean EOF is whole, valid RESP replies;
// - the server keeps answering others: a PING on a new connection every 64 inputs gets +PONG.

private final class Harness: Sendable {
    let server: BreakerServer
    let port: Int

    init(server: BreakerServer) {
        self.server = server
        self.port = server.port
    }

    static func start() -> Harness {
        guard let url = ProcessInfo.processInfo.environment["BREAKERD_FUZZ_REDIS"],
            let endpoint = try? RedisEndpoint(url: url)
        else {
            fatalError("set BREAKERD_FUZZ_REDIS to a redis:// URL of a Redis this fuzzer may write to (scripts/fuzz does)")
        }
        var logger = Logger(label: "breakerd-fuzz")
        logger.logLevel = .critical
        let health = StoreHealth(logger: logger)
        let redis = RedisClient(
            configuration: .init(endpoint: endpoint, deadlineMs: 1000, onStateChange: health.observer))
        let store = BreakerStore(client: redis, configuration: StoreConfiguration(keyPrefix: "fuzz"), logger: logger)
        let server = BreakerServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0), store: store, health: health, logger: logger)
        let started = DispatchSemaphore(value: 0)
        Task {
            do { try await server.start() } catch { fatalError("breakerd did not start: \(error)") }
            started.signal()
        }
        started.wait()
        return Harness(server: server)
    }
}

private let harness = Harness.start()
/// Inputs run so far; libFuzzer calls the entry point from one thread.
nonisolated(unsafe) private var runs = 0

/// A blocking TCP connection to the harness's port from 127.0.0.<2...251>, so the server side's
/// TIME_WAIT entries (it closes first) spread over many address pairs instead of exhausting one.
private func connectToServer(from host: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(fd >= 0, "socket: errno \(errno)")
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    func address(_ last: Int, port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = (UInt32(127) << 24 | UInt32(last)).bigEndian
        return a
    }
    var local = address(host, port: 0)
    var remote = address(1, port: harness.port)
    let size = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
    precondition(bound == 0, "bind 127.0.0.\(host): errno \(errno)")
    let connected = withUnsafePointer(to: &remote) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) }
    }
    precondition(connected == 0, "connect to breakerd: errno \(errno)")
    return fd
}

/// Everything the server sends until EOF; `reset` when the connection was reset instead.
private func readToEnd(_ fd: Int32) -> (bytes: [UInt8], reset: Bool) {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            received.append(contentsOf: chunk[0..<n])
            continue
        }
        if n == 0 { return (received, false) }
        if errno == EINTR { continue }
        if errno == ECONNRESET { return (received, true) }
        if errno == EAGAIN || errno == EWOULDBLOCK {
            fatalError("breakerd sent no EOF within 10 s after the client finished sending (\(received.count) bytes so far)")
        }
        fatalError("recv: errno \(errno)")
    }
}

private func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var offset = 0
    while offset < bytes.count {
        let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
        if n > 0 {
            offset += n
        } else if n < 0 && errno == EINTR {
            continue
        } else if n < 0 && (errno == EPIPE || errno == ECONNRESET) {
            return  // breakerd closed first (a protocol error): what it sent is still read
        } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
            fatalError("breakerd read nothing for 10 s while the client was sending")
        } else {
            fatalError("send: errno \(errno)")
        }
    }
}

private func checkReplies(_ bytes: [UInt8]) {
    var buffer = ByteBuffer(bytes: bytes)
    let processor = NIOSingleStepByteToMessageProcessor(RESPReplyDecoder())
    do {
        try processor.process(buffer: buffer) { _ in }
    } catch {
        fatalError("breakerd sent bytes that are not RESP (\(error)): \(String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription)")
    }
    buffer.clear()
    precondition(processor.unprocessedBytes == 0, "breakerd's replies end in a partial reply before a clean EOF")
}

private func serverAnswersPing() {
    let fd = connectToServer(from: 252)
    defer { close(fd) }
    let ping = Array("PING\r\n".utf8)
    ping.withUnsafeBytes { send(fd, $0) }
    var reply = [UInt8](repeating: 0, count: 7)
    var got = 0
    while got < 7 {
        let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 7 - got, 0) }
        precondition(
            n > 0,
            "breakerd did not answer PING on a new connection: \(n == 0 ? "EOF" : "errno \(errno)") after \(got) bytes, input \(runs)")
        got += n
    }
    precondition(reply == Array("+PONG\r\n".utf8), "PING on a new connection got \(reply)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDispatcher(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    runs += 1
    let fd = connectToServer(from: 2 + runs % 250)
    if let start, count > 0 {
        send(fd, UnsafeRawBufferPointer(start: start, count: count))
    }
    shutdown(fd, Int32(SHUT_WR))
    let (bytes, reset) = readToEnd(fd)
    close(fd)
    if !reset { checkReplies(bytes) }
    if runs % 64 == 0 { serverAnswersPing() }
    return 0
}
