import ArgumentParser
import Foundation
import CEpoll
import Glibc
import Histogram
import Synchronization

/// `kvb-bench floor`: what this machine's kernel alone allows for fan-out over loopback TCP, with
/// no relay, no WebSocket framing and no Kafka: writer threads send one message to every one of N
/// sockets each round (as a relay sends one fragment to every viewer), reader threads on the same
/// machine read them (as the load generator does), and the time from the round's start to each
/// message read is recorded. A relay cannot beat these figures on the same machine; the gap
/// between them and `kvb-bench load` is what kvb itself costs.
struct FloorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "floor",
        abstract: "The kernel's floor for fan-out latency and CPU over loopback TCP (no relay).")

    @Option(help: "Receiving sockets (viewers), comma-separated for several runs.")
    var viewers = "100,1000,5000"

    @Option(help: "Bytes per message (the recording's chunks average about 2,400).")
    var messageBytes = 2_400

    @Option(help: "Rounds per second (MediaRecorder's chunks: 10 per second).")
    var rate = 10

    @Option(help: "Seconds measured per run.")
    var seconds = 10

    @Option(help: "Writer threads (the relay's event loops) and reader threads (the generator's).")
    var threads = 2

    func run() throws {
        print("floor: \(threads) writer + \(threads) reader threads, \(messageBytes)-byte messages, \(rate) rounds/s, \(seconds) s")
        print("viewers   latency p50 / p99 / max        process CPU   CPU per message")
        for count in viewers.split(separator: ",").compactMap({ Int($0) }) {
            let result = try LoopbackFloor(viewers: count, messageBytes: messageBytes, rate: rate, seconds: seconds, threads: threads).run()
            print(String(format: "%7d   %6.1f / %6.1f / %6.1f ms   %9.0f%%   %9.1f µs", count,
                         result.p50, result.p99, result.max, result.cpuPercent, result.cpuMicrosecondsPerMessage))
        }
    }
}

/// One run of the floor measurement.
struct LoopbackFloor {
    let viewers: Int
    let messageBytes: Int
    let rate: Int
    let seconds: Int
    let threads: Int

    struct Result {
        var p50: Double
        var p99: Double
        var max: Double
        var cpuPercent: Double
        var cpuMicrosecondsPerMessage: Double
    }

    func run() throws -> Result {
        let (senders, receivers) = try Self.connectedPairs(viewers)
        defer { for fd in senders + receivers { close(fd) } }
        let rounds = rate * seconds
        let shared = Shared(rounds: rounds)
        let messageBytes = self.messageBytes

        // Readers: epoll over their share of the receiving sockets.
        var readerThreads: [Thread] = []
        for reader in 0..<threads {
            let mine = stride(from: reader, to: receivers.count, by: threads).map { receivers[$0] }
            let thread = Thread {
                var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                let epoll = epoll_create1(0)
                var received = [Int](repeating: 0, count: mine.count)
                for (slot, fd) in mine.enumerated() {
                    var event = epoll_event()
                    event.events = EPOLLIN.rawValue
                    event.data.u64 = UInt64(slot)
                    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
                }
                var events = [epoll_event](repeating: epoll_event(), count: 256)
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while !shared.done.load(ordering: .relaxed) {
                    let ready = epoll_wait(epoll, &events, Int32(events.count), 50)
                    guard ready > 0 else { continue }
                    for index in 0..<Int(ready) {
                        let slot = Int(events[index].data.u64)
                        let count = buffer.withUnsafeMutableBytes { read(mine[slot], $0.baseAddress, $0.count) }
                        guard count > 0 else { continue }
                        let before = received[slot] / messageBytes
                        received[slot] += count
                        let after = received[slot] / messageBytes
                        guard after > before else { continue }
                        let now = monotonicMicroseconds()
                        for round in before..<after where round < rounds {
                            let start = shared.start(of: round)
                            if start > 0 { histogram.record(UInt64(max(0, now - start))) }
                        }
                    }
                }
                close(epoll)
                shared.histograms.withLock { $0.append(histogram) }
            }
            readerThreads.append(thread)
            thread.start()
        }

        // Writers: each round, one message to each of their sockets (blocking writes).
        let usageBefore = processCPUMicroseconds()
        let wallBefore = monotonicMicroseconds()
        let message = [UInt8](repeating: 0x5A, count: messageBytes)
        for writer in 0..<threads {
            let mine = stride(from: writer, to: senders.count, by: threads).map { senders[$0] }
            Thread {
                for round in 0..<rounds {
                    let due = wallBefore + Int64(round) * 1_000_000 / Int64(rate)
                    while monotonicMicroseconds() < due { usleep(UInt32(max(100, min(5_000, due - monotonicMicroseconds())))) }
                    if writer == 0 { shared.setStart(of: round, to: monotonicMicroseconds()) }
                    while shared.start(of: round) == 0 { sched_yield() }
                    for fd in mine {
                        message.withUnsafeBytes { bytes in
                            guard let base = bytes.baseAddress else { return }
                            var offset = 0
                            while offset < bytes.count {
                                let written = write(fd, base + offset, bytes.count - offset)
                                if written <= 0 { return }
                                offset += written
                            }
                        }
                    }
                }
                shared.writersDone.add(1, ordering: .releasing)
            }.start()
        }
        while shared.writersDone.load(ordering: .acquiring) < threads { usleep(10_000) }
        usleep(300_000)  // the last round's reads
        let cpu = Double(processCPUMicroseconds() - usageBefore)
        let wall = Double(monotonicMicroseconds() - wallBefore)
        shared.done.store(true, ordering: .relaxed)
        while shared.histograms.withLock({ $0.count }) < threads { usleep(10_000) }
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for histogram in shared.histograms.withLock({ $0 }) { merged.add(histogram) }
        let messages = Double(viewers * rounds)
        return Result(
            p50: Double(merged.valueAtPercentile(50)) / 1000, p99: Double(merged.valueAtPercentile(99)) / 1000,
            max: Double(merged.max) / 1000, cpuPercent: cpu / wall * 100, cpuMicrosecondsPerMessage: cpu / messages
        )
    }

    /// What the threads share: each round's start, and the results.
    final class Shared: @unchecked Sendable {
        let done = Atomic<Bool>(false)
        let writersDone = Atomic<Int>(0)
        let histograms = Mutex<[Histogram<UInt64>]>([])
        /// Each round's start (µs, monotonic); written once by the first writer (unchecked
        /// Sendable: the memory is only reached through atomic operations, and freed in deinit).
        private let starts: UnsafeMutablePointer<Atomic<Int64>>
        private let count: Int

        init(rounds: Int) {
            count = rounds
            starts = .allocate(capacity: rounds)
            for index in 0..<rounds { (starts + index).initialize(to: Atomic<Int64>(0)) }
        }

        deinit {
            starts.deinitialize(count: count)
            starts.deallocate()
        }

        func start(of round: Int) -> Int64 { starts[round].load(ordering: .acquiring) }
        func setStart(of round: Int, to value: Int64) { starts[round].store(value, ordering: .releasing) }
    }

    /// `count` connected loopback TCP pairs: (sending ends with TCP_NODELAY, receiving ends).
    static func connectedPairs(_ count: Int) throws -> (senders: [Int32], receivers: [Int32]) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, listen(listener, 4096) == 0 else { throw BenchError("bind/listen: \(String(cString: strerror(errno)))") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        var senders: [Int32] = []
        var receivers: [Int32] = []
        for _ in 0..<count {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
            guard client >= 0, connected == 0 else { throw BenchError("connect: \(String(cString: strerror(errno))) (raise `ulimit -n`?)") }
            let server = accept(listener, nil, nil)
            guard server >= 0 else { throw BenchError("accept: \(String(cString: strerror(errno)))") }
            var one: Int32 = 1
            setsockopt(server, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            senders.append(server)
            receivers.append(client)
        }
        return (senders, receivers)
    }
}

private func monotonicMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}

/// User + system CPU of this process so far.
private func processCPUMicroseconds() -> Int64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}
