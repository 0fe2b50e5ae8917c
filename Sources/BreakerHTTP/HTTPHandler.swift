import NIOCore
import NIOHTTP1

/// Serves one HTTP connection: one request at a time (NIO's pipelining handler holds the next until
/// this one's response has ended), each answered from a task off the event loop; `/events` turns
/// the connection into a Server-Sent Events stream until the peer goes away.
final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: HTTPRoutes
    private let streams: EventStreams
    private let heartbeat: TimeAmount
    private var head: HTTPRequestHead?
    private var context: ChannelHandlerContext?
    private var streamID: Int?
    private var heartbeatTask: RepeatedTask?
    private var closed = false

    init(routes: HTTPRoutes, streams: EventStreams, heartbeat: TimeAmount) {
        self.routes = routes
        self.streams = streams
        self.heartbeat = heartbeat
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        endStream()
        self.context = nil
        closed = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        endStream()
        closed = true
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            // Nothing here takes a body; it is read and dropped.
            break
        case .end:
            guard let h = head else { return }
            head = nil
            handle(h, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // An event stream's peer never sends anything; any other quiet connection is let go.
            if streamID == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handle(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = request.isKeepAlive
        let isHead = request.method == .HEAD
        let peer = context.channel.remoteAddress?.ipAddress ?? "?"
        switch routes.route(
            method: request.method, uri: request.uri, authorization: request.headers.first(name: "authorization"), peer: peer)
        {
        case .eventStream:
            startStream(request, context: context)
        case .response(let respond):
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            Task {
                let response = await respond()
                eventLoop.execute {
                    loopBound.value.write(response, version: request.version, keepAlive: keepAlive, bodyless: isHead)
                }
            }
        }
    }

    private func write(_ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, bodyless: Bool) {
        guard let context, !closed else { return }
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
        if !bodyless && !response.body.isEmpty {
            let buffer = context.channel.allocator.buffer(bytes: response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    // MARK: Server-Sent Events

    private func startStream(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let id = streams.add { line in
            eventLoop.execute { loopBound.value.send(event: line) }
        }
        guard let id else {
            write(
                .text(.serviceUnavailable, "too many event streams\n", headers: [("Retry-After", "5")]), version: request.version,
                keepAlive: false, bodyless: false)
            return
        }
        streamID = id
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Accel-Buffering", value: "no")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        if request.method == .HEAD {
            endStream()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        // The page reconnects after 2 s if the stream breaks; the comment opens the stream at once.
        sendRaw("retry: 2000\n: connected\n\n")
        heartbeatTask = context.eventLoop.scheduleRepeatedTask(initialDelay: heartbeat, delay: heartbeat) { _ in
            loopBound.value.sendRaw(": keepalive\n\n")
        }
        let streams = self.streams
        Task {
            await streams.startListening()
            eventLoop.execute { loopBound.value.sendRaw("event: ready\ndata: listening\n\n") }
        }
    }

    private func send(event line: String) {
        // Event lines are one line; a stray newline would end the SSE field early.
        let data = line.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
        sendRaw("event: transition\ndata: \(data)\n\n")
    }

    private func sendRaw(_ text: String) {
        guard let context, !closed, streamID != nil else { return }
        // A peer that does not read its stream is dropped rather than buffered without bound;
        // EventSource reconnects by itself.
        guard context.channel.isWritable else {
            endStream()
            context.close(promise: nil)
            return
        }
        let buffer = context.channel.allocator.buffer(string: text)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    private func endStream() {
        if let id = streamID { streams.remove(id) }
        streamID = nil
        heartbeatTask?.cancel()
        heartbeatTask = nil
    }
}
