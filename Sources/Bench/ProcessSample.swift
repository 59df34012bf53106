import Foundation

/// What /proc says about a process at one moment.
struct ProcessSample: Sendable {
    /// User + system CPU time, seconds.
    var cpuSeconds: Double
    var residentBytes: Int
    var threads: Int
    var at: ContinuousClock.Instant

    /// Reads /proc/PID/stat and /proc/PID/status; nil once the process is gone.
    static func read(pid: Int32) -> ProcessSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        func value(_ name: String) -> Int {
            for line in status.split(separator: "\n") where line.hasPrefix(name) {
                return Int(line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
            }
            return 0
        }
        return ProcessSample(cpuSeconds: (utime + stime) / ticks, residentBytes: value("VmRSS:") * 1024,
                             threads: value("Threads:"), at: .now)
    }

    /// This process's own CPU time (from /proc/self/stat, in clock ticks).
    static func ownCPUSeconds() -> Double {
        read(pid: getpid())?.cpuSeconds ?? .nan
    }

    /// CPU used between two samples, as a percentage of one core.
    static func cpuPercent(from start: ProcessSample?, to end: ProcessSample?) -> Double {
        guard let start, let end else { return .nan }
        let wall = (end.at - start.at).seconds
        return wall > 0 ? (end.cpuSeconds - start.cpuSeconds) / wall * 100 : .nan
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
