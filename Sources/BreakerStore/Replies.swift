import BreakerCore
import Hiredis

/// Reads one library function's reply: one text of fields separated by line feeds (see REPLIES in
/// breakerd.lua), whose first `fields` are named fields, each checked for its type, then the event
/// lines of the call. A reply of any other shape is an error that names the function, never a
/// field read as a silent default.
struct ReplyReader {
    let function: FunctionLibrary.Function
    let reply: RedisReply
    let elements: [Substring]
    let fields: Int

    init(_ reply: RedisReply, _ function: FunctionLibrary.Function, fields: Int) throws(StoreError) {
        self.function = function
        self.reply = reply
        self.fields = fields
        if let e = reply.errorMessage { throw StoreError.refused(function.name, e) }
        guard case .string(let bytes) = reply else { throw Self.shape(function, reply, "one text") }
        let e = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard e.count >= fields else { throw Self.shape(function, reply, "at least \(fields) fields") }
        elements = e
    }

    /// Field `i` (0-based) as text.
    func text(_ i: Int, _ field: String) -> String { String(elements[i]) }

    /// Field `i` as a whole number.
    func int(_ i: Int, _ field: String) throws(StoreError) -> Int {
        guard let n = Int(elements[i]) else {
            throw Self.shape(function, reply, "\(field) (field \(i + 1)) as a whole number, not '\(elements[i])'")
        }
        return n
    }

    /// Field `i` as one of an enumeration's raw values.
    func value<T: RawRepresentable>(_ i: Int, _ field: String, _: T.Type) throws(StoreError) -> T where T.RawValue == String {
        guard let v = T(rawValue: String(elements[i])) else {
            throw Self.shape(function, reply, "\(field) (field \(i + 1)), not '\(elements[i])'")
        }
        return v
    }

    /// The fields after the named ones: the event lines this call made.
    func events() -> [String] { elements.dropFirst(fields).map(String.init) }

    static func shape(_ function: FunctionLibrary.Function, _ reply: RedisReply, _ wanted: String) -> StoreError {
        let shown: String
        if case .string(let bytes) = reply {
            shown = "'" + String(decoding: bytes.prefix(512), as: UTF8.self).replacingNewlines() + "'"
        } else {
            shown = "\(reply)"
        }
        return StoreError(.redis, "\(function.name) replied with an unexpected shape (wanted \(wanted)): \(shown)")
    }
}

extension String {
    fileprivate func replacingNewlines() -> String { String(map { $0 == "\n" ? "|" : $0 }) }
}

extension AcquireResult {
    /// { 'PERMIT', state, permit, 0, gen, event... } or { 'DENY', state, '', retry_after_ms, gen, event... }
    init(reply: RedisReply) throws(StoreError) {
        let r = try ReplyReader(reply, .acquire, fields: 5)
        let kind = r.text(0, "decision")
        let state = try r.value(1, "state", BreakerState.self)
        switch kind {
        case "PERMIT": decision = .permit(permit: r.text(2, "permit"), state: state)
        case "DENY": decision = .deny(state: state, retryAfterMs: try r.int(3, "retry_after_ms"))
        default: throw ReplyReader.shape(.acquire, reply, "PERMIT or DENY first, not '\(kind)'")
        }
        generation = try r.int(4, "gen")
        events = r.events()
    }
}

extension ReportResult {
    /// { 'OK', state, effect, gen, event... }
    init(reply: RedisReply) throws(StoreError) {
        let r = try ReplyReader(reply, .report, fields: 4)
        guard r.text(0, "status") == "OK" else { throw ReplyReader.shape(.report, reply, "OK first") }
        state = try r.value(1, "state", BreakerState.self)
        effect = try r.value(2, "effect", ReportEffect.self)
        generation = try r.int(3, "gen")
        events = r.events()
    }
}

extension FoldResult {
    /// { 'OK', state, effect, gen, retry_after_ms, mode, slow_call_ms, permit_ttl_ms, duplicate, event... }
    init(reply: RedisReply) throws(StoreError) {
        let r = try ReplyReader(reply, .fold, fields: 9)
        guard r.text(0, "status") == "OK" else { throw ReplyReader.shape(.fold, reply, "OK first") }
        state = try r.value(1, "state", BreakerState.self)
        effect = try r.value(2, "effect", ReportEffect.self)
        generation = try r.int(3, "gen")
        retryAfterMs = try r.int(4, "retry_after_ms")
        mode = try r.value(5, "mode", BreakerMode.self)
        slowCallMs = try r.int(6, "slow_call_ms")
        permitTTLMs = try r.int(7, "permit_ttl_ms")
        switch try r.int(8, "duplicate") {
        case 0: duplicate = false
        case 1: duplicate = true
        default: throw ReplyReader.shape(.fold, reply, "duplicate (element 9) as 0 or 1")
        }
        events = r.events()
    }
}

extension ControlResult {
    /// { 'OK', state, mode, gen, event... }
    init(reply: RedisReply) throws(StoreError) {
        let r = try ReplyReader(reply, .control, fields: 4)
        guard r.text(0, "status") == "OK" else { throw ReplyReader.shape(.control, reply, "OK first") }
        state = try r.value(1, "state", BreakerState.self)
        mode = try r.value(2, "mode", BreakerMode.self)
        generation = try r.int(3, "gen")
        events = r.events()
    }
}

extension BreakerSnapshot {
    /// Field names and values alternately, every field of breakerd_v2_state present.
    init(name: String, reply: RedisReply) throws(StoreError) {
        let function = FunctionLibrary.Function.state
        let r = try ReplyReader(reply, function, fields: 0)
        guard r.elements.count % 2 == 0 else { throw ReplyReader.shape(function, reply, "field, value pairs") }
        var fields: [Substring: Substring] = [:]
        for i in stride(from: 0, to: r.elements.count, by: 2) { fields[r.elements[i]] = r.elements[i + 1] }
        func text(_ k: Substring) throws(StoreError) -> String {
            guard let v = fields[k] else { throw ReplyReader.shape(function, reply, "a field \(k)") }
            return String(v)
        }
        func int(_ k: Substring) throws(StoreError) -> Int {
            let v = try text(k)
            guard let n = Int(v) else { throw ReplyReader.shape(function, reply, "\(k) as a whole number, not '\(v)'") }
            return n
        }
        func value<T: RawRepresentable>(_ k: Substring, _: T.Type) throws(StoreError) -> T where T.RawValue == String {
            let v = try text(k)
            guard let t = T(rawValue: v) else { throw ReplyReader.shape(function, reply, "a known \(k), not '\(v)'") }
            return t
        }
        self.name = name
        exists = try int("exists") == 1
        state = try value("state", BreakerState.self)
        mode = try value("mode", BreakerMode.self)
        generation = try int("gen")
        calls = try int("calls")
        failures = try int("failures")
        slowCalls = try int("slow")
        failureRate = try text("failure_rate")
        slowRate = try text("slow_rate")
        liveTrials = try int("trials")
        halfOpenPermits = try int("permits")
        retryAfterMs = try int("retry_after_ms")
        opens = try int("opens")
        openUntil = try int("open_until")
        modeBy = try text("mode_by")
        modeWhy = try text("mode_why")
        modeAt = try int("mode_at")
        modeUntil = try int("mode_until")
    }
}
