import BreakerCore
import BreakerStore
import Prometheus

/// The per-breaker gauges of /metrics, from a fleet read made for this scrape. A registry of its own
/// per scrape, so a breaker that no longer exists in Redis simply stops being reported.
enum FleetMetrics {
    private static func gauge(_ r: PrometheusCollectorRegistry, _ name: String, _ labels: [(String, String)], _ help: String) -> Gauge {
        r.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    private static func gauge(_ r: PrometheusCollectorRegistry, _ name: String, _ help: String) -> Gauge {
        r.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
    }

    static func emit(_ view: FleetView?, into buffer: inout [UInt8]) {
        let r = PrometheusCollectorRegistry()
        gauge(r, "breakerd_fleet_read_ok", "1 when this scrape could read every breaker from Redis")
            .set(to: view == nil ? 0 : 1)
        guard let view else {
            r.emit(into: &buffer)
            return
        }
        gauge(r, "breakerd_breakers", "Breakers with state in Redis (the fleet's)").set(to: Double(view.total))
        gauge(r, "breakerd_breakers_reported", "Breakers reported in this scrape (at most HTTPConfiguration.maxBreakers, 1000 by default)")
            .set(to: Double(view.breakers.count))
        for b in view.breakers {
            let s = b.snapshot
            let name = [("breaker", s.name)]
            let state = b.effectiveState
            for each in BreakerState.allCases {
                gauge(r, "breakerd_breaker_state", name + [("state", each.rawValue)],
                    "1 for the breaker's current state (open ends when its open time does), 0 for the others"
                ).set(to: each == state ? 1 : 0)
            }
            for mode in BreakerMode.allCases {
                gauge(r, "breakerd_breaker_mode", name + [("mode", mode.rawValue)],
                    "1 for the breaker's current mode (auto or an operator's), 0 for the others"
                ).set(to: mode == s.mode ? 1 : 0)
            }
            gauge(r, "breakerd_breaker_failure_rate", name, "Failures / calls in the window")
                .set(to: Double(s.failureRate) ?? 0)
            gauge(r, "breakerd_breaker_slow_rate", name, "Slow calls / calls in the window")
                .set(to: Double(s.slowRate) ?? 0)
            gauge(r, "breakerd_breaker_calls", name, "Calls counted in the window")
                .set(to: Double(s.calls))
            gauge(r, "breakerd_breaker_failures", name, "Failed calls in the window")
                .set(to: Double(s.failures))
            gauge(r, "breakerd_breaker_live_trials", name, "Half-open trial permits live now")
                .set(to: Double(s.liveTrials))
            gauge(r, "breakerd_breaker_retry_after_seconds", name, "Time until a trial may run (0 unless open)")
                .set(to: Double(s.retryAfterMs) / 1000)
        }
        r.emit(into: &buffer)
    }
}
