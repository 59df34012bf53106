import Dispatch

/// Runs blocking work (librdkafka calls that wait on the network) on a dispatch thread, never on
/// Swift's cooperative pool, and awaits its result.
func runBlocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: work()) }
    }
}
