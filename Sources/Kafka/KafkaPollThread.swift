import Foundation

/// A dedicated thread that calls a blocking poll function until stopped.
///
/// librdkafka's polls block; they belong on their own threads, never on Swift's cooperative pool.
public final class KafkaPollThread: Sendable {
    private let running = Locked(true)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts a thread named `name` that calls `poll` until ``stop()``; `poll` should block at
    /// most a short time (it is the stop latency).
    public init(name: String, poll: @escaping @Sendable () -> Void) {
        let thread = Thread { [running, finished] in
            while running.withLock({ $0 }) { poll() }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Asks the thread to stop and waits until it has.
    public func stop() {
        let wasRunning = running.withLock { value -> Bool in
            defer { value = false }
            return value
        }
        if wasRunning { finished.wait() }
    }
}
