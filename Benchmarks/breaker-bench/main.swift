// breaker-bench: a load generator for breakerd, built only for benchmarking (BREAKERD_BENCH=1).
//
// C connections for D seconds run ACQUIRE then REPORT cycles over B breakers, failing a fraction F
// of calls; it prints cycles per second, latency percentiles (HdrHistogram) and, given --pid,
// breakerd's peak resident memory. --deny-only sends ACQUIRE alone (the deny path of open breakers),
// --idle N opens N more connections that send nothing, --stampede samples live half-open trials.
// --pipeline P runs P callers on each connection, their requests pipelined as a replica's client
// library does; --rate R paces all callers together to R cycles a second, and latency is then
// measured from when each cycle was due, so a server that falls behind shows it. --warmup W runs
// W seconds before the D that are measured (connections made, breakers first seen).
import Foundation
import Histogram
import NIOCore
import NIOPosix
import RESP

struct Options {
    var host = "127.0.0.1"
    var port = 7420
    var connections = 50
    var seconds = 10.0
    var breakers = 100
    var failureRatio = 0.0
    var denyOnly = false
    var idle = 0
    var pid: Int32?
    var prefix = "bench"
    var stampede = false
    var label = "run"
    var pipeline = 1
    var warmup = 0.0
    var tickMicros = 200
    var rate = 0.0

    static func parse() -> Options {
        var o = Options()
        var args = CommandLine.arguments.dropFirst()[...]
        func value() -> String {
            guard let v = args.popFirst() else { fatalError("a flag needs a value") }
            return v
        }
        while let a = args.popFirst() {
            switch a {
            case "--host": o.host = value()
            case "--port": o.port = Int(value())!
            case "-c", "--connections": o.connections = Int(value())!
            case "-d", "--seconds": o.seconds = Double(value())!
            case "-b", "--breakers": o.breakers = Int(value())!
            case "-f", "--failure-ratio": o.failureRatio = Double(value())!
            case "--deny-only": o.denyOnly = true
            case "--idle": o.idle = Int(value())!
            case "--pid": o.pid = Int32(value())!
            case "--prefix": o.prefix = value()
            case "--stampede": o.stampede = true
            case "--label": o.label = value()
            case "-P", "--pipeline": o.pipeline = max(1, Int(value())!)
            case "--rate": o.rate = Double(value())!
            case "--warmup": o.warmup = Double(value())!
            case "--tick-us": o.tickMicros = max(10, Int(value())!)
            case "-h", "--help":
                print("usage: breaker-bench [--host H] [--port P] [-c conns] [-d seconds] [-b breakers] [-f failure-ratio] [--deny-only] [--idle N] [--stampede] [--pid breakerd-pid] [--prefix name] [--label text] [-P callers-per-connection] [--rate cycles-per-second] [--warmup seconds] [--tick-us paced-send-interval]")
                exit(0)
            default: fatalError("unknown flag \(a)")
            }
        }
        return o
    }
}

func frame(_ words: [String]) -> ByteBuffer {
    var b = ByteBufferAllocator().buffer(capacity: 64)
    RESPValue.array(words.map { .bulk($0) }).encode(into: &b, version: .resp2)
    return b
}

/// Requests encoded once for all connections: ACQUIRE of each breaker, and the parts of a REPORT
/// around its permit.
struct Frames: Sendable {
    let acquire: [ByteBuffer]
    let reportHeads: [ByteBuffer]
    let reportTails: [ByteBuffer]

    init(_ options: Options) {
        let names = (0..<options.breakers).map { "\(options.prefix)-\($0)" }
        acquire = names.map { frame(["ACQUIRE", $0]) }
        reportHeads = names.map { name in
            var b = ByteBufferAllocator().buffer(capacity: 64)
            b.writeString("*6\r\n$6\r\nREPORT\r\n$\(name.utf8.count)\r\n\(name)\r\n")
            return b
        }
        reportTails = ["SUCCESS", "FAILURE"].map { outcome in
            var b = ByteBufferAllocator().buffer(capacity: 64)
            b.writeString("\r\n$7\r\n\(outcome)\r\n$7\r\nLATENCY\r\n$1\r\n1\r\n")
            return b
        }
    }
}

/// Runs one connection's callers on the event loop; no locks on the hot path. Replies come back in
/// request order, so a FIFO says whose each one is.
final class CycleHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = RESPValue
    typealias OutboundOut = ByteBuffer

    struct Caller {
        var breaker = 0
        var start: NIODeadline = .now()
        var reporting = false
    }

    let options: Options
    let deadline: NIODeadline
    /// Time between two cycles of one caller when paced; nil when each starts as the last ends.
    let interval: TimeAmount?
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    /// ACQUIRE's answer alone: what a protected call waits for before it calls the dependency
    /// (a client library such as BreakerClient reports the outcome after, off the caller's path).
    var acquireHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var cycles = 0
    var denies = 0
    var errors = 0
    /// Answers marked `degraded` (decided or acknowledged without Redis), warm-up included.
    var degraded = 0
    var callers: [Caller]
    /// So the generator spends its CPU on the wire, not on building frames.
    let acquireFrames: [ByteBuffer]
    let reportHeads: [ByteBuffer]
    let reportTails: [ByteBuffer]
    var waiting = CircularBuffer<Int>()
    var rng = SystemRandomNumberGenerator()
    let done: EventLoopPromise<Void>
    var finished = false
    var active: Int

    init(options: Options, totalCallers: Int, deadline: NIODeadline, done: EventLoopPromise<Void>) {
        self.options = options
        self.deadline = deadline
        self.done = done
        self.callers = Array(repeating: Caller(), count: options.pipeline)
        self.active = options.pipeline
        self.interval = options.rate > 0 ? .nanoseconds(Int64(Double(totalCallers) / options.rate * 1e9)) : nil
        self.acquireFrames = sharedFrames.acquire
        self.reportHeads = sharedFrames.reportHeads
        self.reportTails = sharedFrames.reportTails
    }

    /// Paced callers waiting for their next cycle: caller -> when it is due.
    var due: [Int: NIODeadline] = [:]
    var ticker: RepeatedTask?

    func channelActive(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        for i in callers.indices {
            if let interval {
                // Spread the first cycles over one interval so paced callers do not move in step.
                let offset = TimeAmount.nanoseconds(Int64.random(in: 0..<max(1, interval.nanoseconds), using: &rng))
                due[i] = now + offset
            } else {
                startCycle(i, due: now, context: context)
            }
        }
        if interval != nil {
            // One timer per connection starts every cycle that has come due and flushes them as
            // one write, as a client library sends what its callers asked for meanwhile. Latency
            // counts from the due time, so the tick's delay (at most --tick-us) is in the figures.
            ticker = context.eventLoop.scheduleRepeatedTask(
                initialDelay: .zero, delay: .microseconds(Int64(options.tickMicros))
            ) { _ in
                self.startDue(context: context)
            }
        }
        context.flush()
    }

    func startDue(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        var started = false
        for (i, at) in due where at <= now {
            due[i] = nil
            startCycle(i, due: at, context: context)
            started = true
        }
        if started { context.flush() }
    }

    func schedule(_ i: Int, at when: NIODeadline, context: ChannelHandlerContext) {
        if when <= .now() {
            startCycle(i, due: when, context: context)
        } else {
            due[i] = when
        }
    }

    func startCycle(_ i: Int, due: NIODeadline, context: ChannelHandlerContext) {
        if NIODeadline.now() >= deadline {
            active -= 1
            if active == 0 && !finished {
                finished = true
                ticker?.cancel()
                done.succeed()
                context.close(promise: nil)
            }
            return
        }
        callers[i].breaker = Int.random(in: 0..<options.breakers, using: &rng)
        callers[i].start = due
        callers[i].reporting = false
        waiting.append(i)
        context.write(wrapOutboundOut(acquireFrames[callers[i].breaker]), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let i = waiting.popFirst() else { return }
        guard case .simpleString(let line) = reply else {
            errors += 1
            finishCycle(i, context: context)
            return
        }
        if line.hasSuffix(" degraded") { degraded += 1 }
        if !callers[i].reporting && callers[i].start >= measureFrom {
            _ = acquireHistogram.record(UInt64(max(0, (NIODeadline.now() - callers[i].start).nanoseconds / 1000)))
        }
        if !callers[i].reporting, line.hasPrefix("PERMIT "), !options.denyOnly {
            let permit = line.utf8.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }
            let failed = Double.random(in: 0..<1, using: &rng) < options.failureRatio
            callers[i].reporting = true
            waiting.append(i)
            var b = context.channel.allocator.buffer(capacity: 96)
            b.writeImmutableBuffer(reportHeads[callers[i].breaker])
            b.writeString("$\(permit.count)\r\n")
            b.writeBytes(permit)
            b.writeImmutableBuffer(reportTails[failed ? 1 : 0])
            context.write(wrapOutboundOut(b), promise: nil)
            return
        }
        if line.hasPrefix("DENY ") && callers[i].start >= measureFrom { denies += 1 }
        finishCycle(i, context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func finishCycle(_ i: Int, context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        let micros = (now - callers[i].start).nanoseconds / 1000
        if callers[i].start >= measureFrom {
            _ = histogram.record(UInt64(max(0, micros)))
            cycles += 1
        }
        if let interval {
            schedule(i, at: callers[i].start + interval, context: context)
        } else {
            startCycle(i, due: now, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors += 1
        if !finished {
            finished = true
            done.succeed()
        }
        context.close(promise: nil)
    }
}

func peakRSS(_ pid: Int32) -> String {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return "?" }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") || line.hasPrefix("VmRSS:") {
        _ = line
    }
    let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
    let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
    return "rss \(rss ?? "?") peak \(hwm ?? "?")"
}

let options = Options.parse()
let sharedFrames = Frames(options)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

func connect(_ handler: (any ChannelHandler & Sendable)?) throws -> any Channel {
    try ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPReplyDecoder()))
                if let handler { try channel.pipeline.syncOperations.addHandler(handler) }
            }
        }
        .connect(host: options.host, port: options.port).wait()
}

var idleChannels: [any Channel] = []
for _ in 0..<options.idle {
    idleChannels.append(try connect(nil))
}

// The stampede sampler reads STATE of one breaker while the load runs and keeps the most live trials seen.
final class TrialSampler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = RESPValue
    typealias OutboundOut = ByteBuffer
    var maxTrials = 0
    var permits = 0
    var samples = 0
    let breaker: String
    init(breaker: String) { self.breaker = breaker }
    func channelActive(context: ChannelHandlerContext) { ask(context) }
    func ask(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(frame(["STATE", breaker])), promise: nil)
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .simpleString(let line) = unwrapInboundIn(data), let t = line.split(separator: " ").first(where: { $0.hasPrefix("trials=") }) {
            let parts = t.dropFirst(7).split(separator: "/")
            maxTrials = max(maxTrials, Int(parts[0]) ?? 0)
            permits = Int(parts[1]) ?? 0
            samples += 1
        }
        context.eventLoop.scheduleTask(in: .milliseconds(1)) { self.ask(context) }
    }
}

var sampler: TrialSampler?
var samplerChannel: (any Channel)?
if options.stampede {
    let s = TrialSampler(breaker: "\(options.prefix)-0")
    sampler = s
    samplerChannel = try connect(s)
}

var handlers: [CycleHandler] = []
var futures: [EventLoopFuture<Void>] = []
/// Cycles due before this are warm-up: run, not measured.
let measureFrom = NIODeadline.now() + .nanoseconds(Int64(options.warmup * 1e9))
let deadline = measureFrom + .nanoseconds(Int64(options.seconds * 1e9))
for _ in 0..<options.connections {
    let promise = group.next().makePromise(of: Void.self)
    let h = CycleHandler(options: options, totalCallers: options.connections * options.pipeline, deadline: deadline, done: promise)
    handlers.append(h)
    futures.append(promise.futureResult)
    _ = try connect(h)
}
try EventLoopFuture.andAllComplete(futures, on: group.next()).wait()
let elapsed = Double((NIODeadline.now() - measureFrom).nanoseconds) / 1e9

// Merge on the loop thread that owns the handlers.
let (histogram, acquires, cycles, denies, errors, degraded) = try group.next().submit {
    () -> (Histogram<UInt64>, Histogram<UInt64>, Int, Int, Int, Int) in
    var h = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var a = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var c = 0, d = 0, e = 0, g = 0
    for handler in handlers {
        g += handler.degraded
        h.add(handler.histogram)
        a.add(handler.acquireHistogram)
        c += handler.cycles
        d += handler.denies
        e += handler.errors
    }
    return (h, a, c, d, e, g)
}.wait()

var line = String(
    format: "%@: %d conns x %d callers, %.1f s, %d breakers: %.0f cycles/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, denies %d, errors %d",
    options.label, options.connections, options.pipeline, elapsed, options.breakers, Double(cycles) / elapsed,
    Double(histogram.valueAtPercentile(50)) / 1000, Double(histogram.valueAtPercentile(99)) / 1000,
    Double(histogram.valueAtPercentile(99.9)) / 1000, denies, errors)
line += String(
    format: ", acquire p50 %.2f ms p99 %.2f ms", Double(acquires.valueAtPercentile(50)) / 1000,
    Double(acquires.valueAtPercentile(99)) / 1000)
line += ", degraded \(degraded)"
if options.idle > 0 { line += ", idle conns \(options.idle)" }
if let s = sampler { line += ", max live trials \(s.maxTrials)/\(s.permits) in \(s.samples) samples" }
if let pid = options.pid { line += ", breakerd \(peakRSS(pid))" }
print(line)
for c in idleChannels { c.close(promise: nil) }
samplerChannel?.close(promise: nil)
try? group.syncShutdownGracefully()
