import Kafka
import NIOCore

/// Every open WebSocket, so shutdown can close them all with 1001 and wait for them to finish;
/// and how many each remote address holds, for the per-address limit.
final class ConnectionRegistry: Sendable {
    typealias Closer = @Sendable () async -> Void

    private struct State: Sendable {
        var next: UInt64 = 0
        var open: [UInt64: (host: String, closer: Closer)] = [:]
        var perHost: [String: Int] = [:]
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())
    let maxPerAddress: Int

    init(maxPerAddress: Int) {
        self.maxPerAddress = maxPerAddress
    }

    /// Registers a connection from `host`; `closer` ends it with "going away". Returns its token,
    /// or nil when `host` already holds ``maxPerAddress`` connections.
    func register(host: String, _ closer: @escaping Closer) -> UInt64? {
        state.withLock { state -> UInt64? in
            guard state.perHost[host, default: 0] < maxPerAddress else { return nil }
            state.next += 1
            state.open[state.next] = (host, closer)
            state.perHost[host, default: 0] += 1
            return state.next
        }
    }

    /// Replaces a connection's closer (once it knows how to close itself politely).
    func update(_ token: UInt64, closer: @escaping Closer) {
        state.withLock { $0.open[token]?.closer = closer }
    }

    func unregister(_ token: UInt64) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard let entry = state.open.removeValue(forKey: token) else { return [] }
            let left = state.perHost[entry.host, default: 1] - 1
            state.perHost[entry.host] = left > 0 ? left : nil
            guard state.open.isEmpty else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var count: Int { state.withLock { $0.open.count } }

    /// Closes every connection (each closer is bounded in time: a socket that does not take its
    /// close frame is cut off) and waits until all have unregistered, or `timeout` passes.
    func closeAll(timeout: Duration) async {
        let closers = state.withLock { $0.open.values.map(\.closer) }
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
