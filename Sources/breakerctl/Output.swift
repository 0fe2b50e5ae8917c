import BreakerClient
import BreakerCore
import Foundation

/// Text for people: a table with colour when stdout is a terminal (and NO_COLOR is not set).
enum Output {
    static let colour: Bool =
        isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil

    static func paint(_ text: String, _ code: String) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    static func paint(state: BreakerState, _ text: String) -> String {
        switch state {
        case .closed: return paint(text, "32")
        case .open: return paint(text, "1;31")
        case .halfOpen: return paint(text, "33")
        }
    }

    /// Columns padded by their visible width, then coloured, so escapes do not skew the layout.
    static func table(_ header: [String], _ rows: [[(text: String, paint: (String) -> String)]])
        -> String
    {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.text.count) }
        }
        func pad(_ s: String, _ w: Int) -> String {
            s + String(repeating: " ", count: max(0, w - s.count))
        }
        var lines = [
            header.enumerated().map { paint(pad($1, widths[$0]), "1") }.joined(separator: "  ")
        ]
        for row in rows {
            let cells = row.enumerated().map { i, cell in
                i == row.count - 1 ? cell.paint(cell.text) : cell.paint(pad(cell.text, widths[i]))
            }
            lines.append(cells.joined(separator: "  "))
        }
        return lines.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .joined(separator: "\n")
    }

    static func percent(_ rate: Double) -> String {
        let p = rate * 100
        return p == p.rounded() ? "\(Int(p))%" : String(format: "%.1f%%", p)
    }

    static func duration(ms: Int) -> String {
        if ms <= 0 { return "-" }
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return String(format: "%.1fs", Double(ms) / 1000) }
        return "\(ms / 60_000)m\((ms % 60_000) / 1000)s"
    }

    static func time(ms: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// One event as a line: local time, breaker, transition (coloured by where it went), the rest.
    static func event(_ e: BreakerEvent) -> String {
        let rest = e.fields.filter { $0.key != "gen" && $0.key != "at" }.map { "\($0.key)=\($0.value)" }
        return
            "\(time(ms: e.atMs))  \(paint(e.breaker, "1"))  \(paint(state: e.to, "\(e.from.rawValue)->\(e.to.rawValue)"))  gen=\(e.generation)  \(rest.joined(separator: " "))"
    }
}

/// A breaker in `status --json`.
struct StatusJSON: Encodable {
    var name: String
    var state: String
    var mode: String
    var generation: Int
    var calls: Int
    var failures: Int
    var slowCalls: Int
    var failureRate: Double
    var slowRate: Double
    var liveTrials: Int
    var halfOpenPermits: Int
    var retryAfterMs: Int
    var modeBy: String?
    var modeUntilMs: Int?

    init(_ s: BreakerStatus) {
        name = s.name
        state = s.state.rawValue
        mode = s.mode.rawValue
        generation = s.generation
        calls = s.calls
        failures = s.failures
        slowCalls = s.slowCalls
        failureRate = s.failureRate
        slowRate = s.slowRate
        liveTrials = s.liveTrials
        halfOpenPermits = s.halfOpenPermits
        retryAfterMs = s.retryAfterMs
        modeBy = s.modeBy
        modeUntilMs = s.modeUntilMs
    }
}

/// An event in `history --json`.
struct EventJSON: Encodable {
    var breaker: String
    var from: String
    var to: String
    var generation: Int
    var atMs: Int
    var reason: String
    var fields: [String: String]
    var line: String

    init(_ e: BreakerEvent) {
        breaker = e.breaker
        from = e.from.rawValue
        to = e.to.rawValue
        generation = e.generation
        atMs = e.atMs
        reason = e.reason
        fields = Dictionary(e.fields.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        line = e.line
    }
}
