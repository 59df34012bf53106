import Foundation
import Histogram
import LoadGenerator
import Logging
import NIOCore
import NIOWebSocket
import NIOPosix
import Synchronization
import WSClient

/// Monotonic nanoseconds (publishers and viewers share one process, so one clock).
func nowNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// When each chunk of a publisher's stream was sent, for its viewers' latency.
final class SendLog: Sendable {
    private let times: Mutex<[UInt64]>

    init(chunks: Int) {
        times = Mutex([UInt64](repeating: 0, count: chunks))
    }

    func sent(_ chunk: Int, at time: UInt64) { times.withLock { $0[chunk] = time } }

    func sentAt(_ chunk: Int) -> UInt64? {
        times.withLock { chunk < $0.count && $0[chunk] > 0 ? $0[chunk] : nil }
    }
}

/// The measured stretch of a run: latency counts only inside it.
final class MeasureWindow: Sendable {
    private let start = Atomic<UInt64>(.max)
    private let end = Atomic<UInt64>(.max)

    func begin() { start.store(nowNanoseconds(), ordering: .relaxed) }
    func finish() { end.store(nowNanoseconds(), ordering: .relaxed) }

    func contains(_ time: UInt64) -> Bool {
        time >= start.load(ordering: .relaxed) && time < end.load(ordering: .relaxed)
    }
}

/// A count shared by tasks.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)

    func add() { count.add(1, ordering: .relaxed) }

    var value: Int { count.load(ordering: .relaxed) }
}

/// Values gathered from many tasks.
final class Collected<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }

    var all: [Value] { values.withLock { $0 } }
}

/// A one-shot signal many tasks wait for.
final class StopSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    var fired: Bool { state.withLock { $0.fired } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.fired { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// One viewer's result.
struct ViewerOutcome: Sendable {
    var connected = false
    var slow = false
    var check = ViewerCheck()
    /// Latency of each chunk it completed inside the window, microseconds.
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var messages = 0
    var closeCode: String?
    var error: String?
}

/// The load generator's event loops, and its WebSocket publishers (viewers are ``RawViewer``s).
struct LoadClients: Sendable {
    let group: MultiThreadedEventLoopGroup
    let logger: Logger

    init(threads: Int) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var logger = Logger(label: "kvb.bench")
        logger.logLevel = .critical
        self.logger = logger
    }

    static let maxMessage = 16 << 20

    /// Sends `stream` chunk by chunk at its pace until it ends or `stop` fires, logging send times.
    func publish(port: Int, topic: String, stream: PublishedStream, log: SendLog, stop: StopSignal) async -> String? {
        let interval = UInt64(stream.chunkMilliseconds) * 1_000_000
        do {
            try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws/publish/\(topic)",
                                              configuration: .init(maxFrameSize: Self.maxMessage),
                                              eventLoopGroup: group, logger: logger) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { for try await _ in inbound {} }  // stats notices
                    let start = nowNanoseconds()
                    for index in stream.chunkEnds.indices {
                        if stop.fired { break }
                        let due = start + UInt64(index) * interval
                        let now = nowNanoseconds()
                        if due > now { try await Task.sleep(nanoseconds: due - now) }
                        log.sent(index, at: nowNanoseconds())
                        try await outbound.write(.binary(ByteBuffer(bytes: stream.chunk(index))))
                    }
                    try await outbound.close(.normalClosure, reason: nil)
                    tasks.cancelAll()
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
