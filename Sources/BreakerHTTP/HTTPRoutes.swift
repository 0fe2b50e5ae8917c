import BreakerServer
import BreakerStore
import Foundation
import NIOHTTP1

/// What each path answers. Every answer is read-only: nothing here changes a breaker.
struct HTTPRoutes: Sendable {
    let server: BreakerServer
    let metrics: BreakerMetrics
    let streams: EventStreams
    let reader: FleetReader
    let historyCount: Int
    let access: HTTPAccess
    let samples: BreakerSamples
    let refusals: RefusalLog

    enum Route: Sendable {
        case response(@Sendable () async -> HTTPResponse)
        case eventStream
    }

    /// The route for `method` and `uri` (its query is ignored); `authorization` is the request's
    /// Authorization header, nil when it has none.
    func route(method: HTTPMethod, uri: String, authorization: String? = nil, peer: String = "") -> Route {
        let path = String(uri.prefix { $0 != "?" && $0 != "#" })
        guard access.allows(path: path, authorization: authorization) else {
            metrics.httpAuthFailed()
            refusals.refused(peer: peer, path: path)
            return .response {
                .text(
                    .unauthorized, "unauthorized: send Authorization: Bearer <token>, or basic auth as admin\n",
                    headers: HTTPAccess.challenges)
            }
        }
        let known = ["/", "/index.html", "/metrics", "/api/breakers", "/healthz", "/events"]
        guard known.contains(path) else {
            return .response { .text(.notFound, "not found: try /, /metrics, /api/breakers, /healthz or /events\n") }
        }
        guard method == .GET || method == .HEAD else {
            return .response { .text(.methodNotAllowed, "read-only: GET or HEAD\n", headers: [("Allow", "GET, HEAD")]) }
        }
        switch path {
        case "/metrics": return .response { await self.metricsText() }
        case "/api/breakers": return .response { await self.breakersJSON() }
        case "/healthz": return .response { await self.healthz() }
        case "/events": return .eventStream
        default: return .response { StatusPage.response() }
        }
    }

    /// Prometheus text: this process's counters, then the fleet's per-breaker gauges read now.
    func metricsText() async -> HTTPResponse {
        var fleet: FleetView?
        do {
            fleet = try await reader.read(historyCount: 0)
        } catch {
            fleet = nil
        }
        metrics.update(
            storeUp: fleet != nil && server.health.isUp, openConnections: server.openConnections, eventStreams: streams.count)
        var body = metrics.registry.emitToBuffer()
        FleetMetrics.emit(fleet, into: &body)
        ProcessMetrics.emit(into: &body)
        return HTTPResponse(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body)
    }

    func breakersJSON() async -> HTTPResponse {
        let now = BreakerSamples.nowMs()
        func document(_ view: FleetView, store: String) -> BreakersDocument {
            BreakersDocument(
                now_ms: now, store: store, total: view.total, truncated: view.truncated,
                breakers: view.breakers.map {
                    BreakersDocument.Breaker($0, samples: samples.samples(of: $0.snapshot.name), intervalMs: samples.intervalMs)
                },
                default_policy_changes: metrics.recentDefaultPolicyChanges)
        }
        do {
            let view = try await reader.read(historyCount: historyCount)
            samples.remember(view, at: now)
            return HTTPResponse(.ok, contentType: "application/json", body: document(view, store: "up").encoded())
        } catch {
            // The last breakers read, marked with when: the page shows them as the last known state
            // rather than nothing. Without any read since start, the list is empty.
            var doc = document(samples.lastGood?.view ?? FleetView(breakers: [], total: 0), store: "down")
            doc.as_of_ms = samples.lastGood?.at
            doc.error = "store unavailable: \(error.message)"
            return HTTPResponse(.serviceUnavailable, contentType: "application/json", body: doc.encoded())
        }
    }

    /// 200 while the store answers a PING now, 503 while it does not.
    func healthz() async -> HTTPResponse {
        if await reader.probe() {
            return .text(.ok, "ok\n")
        }
        return .text(.serviceUnavailable, "store down: \(server.health.detail)\n")
    }
}
