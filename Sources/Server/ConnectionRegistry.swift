import Kafka

/// Every open WebSocket, so shutdown can close them all with 1001 and wait for them to finish.
final class ConnectionRegistry: Sendable {
    typealias Closer = @Sendable () async -> Void

    private struct State: Sendable {
        var next: UInt64 = 0
        var open: [UInt64: Closer] = [:]
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())

    /// Registers a connection; `closer` ends it with "going away". Returns its token.
    func register(_ closer: @escaping Closer) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.open[state.next] = closer
            return state.next
        }
    }

    func unregister(_ token: UInt64) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open[token] = nil
            guard state.open.isEmpty else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var count: Int { state.withLock { $0.open.count } }

    /// Closes every connection and waits until all have unregistered (or `timeout` passes).
    func closeAll(timeout: Duration) async {
        let closers = state.withLock { Array($0.open.values) }
        await withTaskGroup(of: Void.self) { group in
            for closer in closers { group.addTask { await closer() } }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [state] in
                await withCheckedContinuation { continuation in
                    let done = state.withLock { state -> Bool in
                        if state.open.isEmpty { return true }
                        state.waiters.append(continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            // Release a waiter left behind by the timeout.
            let left = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in left { waiter.resume() }
        }
    }
}
