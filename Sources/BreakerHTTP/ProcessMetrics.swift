import BreakerServer
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `breakerd_build_info` and the standard `process_*` families, read from /proc at scrape time (the
/// names and meanings Prometheus's own client libraries use, so existing dashboards and alerts fit).
/// Written by hand: swift-prometheus has no process collector, and these are five reads of /proc.
enum ProcessMetrics {
    /// Appends the families to `buffer` in the text format, each with HELP and TYPE.
    static func emit(into buffer: inout [UInt8]) {
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double, labels: String = "") {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name)\(labels) \(format(value))\n"
        }
        family(
            "breakerd_build_info", "gauge", "Always 1; the labels say which breakerd this is", 1,
            labels: "{version=\"\(BreakerdBuild.version)\"}")
        if let p = read() {
            family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds", p.cpuSeconds)
            family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes", p.residentBytes)
            family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes", p.virtualBytes)
            family("process_open_fds", "gauge", "Number of open file descriptors", p.openFDs)
            if let max = p.maxFDs { family("process_max_fds", "gauge", "Maximum number of open file descriptors", max) }
            family(
                "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds", p.startTime)
        }
        buffer += Array(text.utf8)
    }

    struct Figures {
        var cpuSeconds: Double
        var residentBytes: Double
        var virtualBytes: Double
        var openFDs: Double
        var maxFDs: Double?
        var startTime: Double
    }

    /// This process's figures from /proc; nil where there is no /proc (they are then left out).
    static func read() -> Figures? {
        #if os(Linux)
            guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
                let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
                let system = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // The command name (field 2) may hold spaces; the fields after its ')' start at field 3.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            let pages = statm.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            let bootTime = system.split(separator: "\n").first { $0.hasPrefix("btime ") }
                .flatMap { Double($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) }
            guard fields.count > 19, pages.count >= 2, let bootTime,
                let utime = Double(fields[11]), let stime = Double(fields[12]), let started = Double(fields[19])
            else { return nil }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            // Minus one: the directory listing itself holds a descriptor while it is read.
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count).map { Double(max(0, $0 - 1)) } ?? 0
            var limit = rlimit()
            let maxFDs: Double? = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : nil
            return Figures(
                cpuSeconds: (utime + stime) / ticks, residentBytes: pages[1] * pageSize, virtualBytes: pages[0] * pageSize,
                openFDs: fds, maxFDs: maxFDs, startTime: bootTime + started / ticks)
        #else
            return nil
        #endif
    }

    private static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
