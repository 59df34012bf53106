import Kafka
import Logging

/// One viewer's side of the fan-out: its bounded queue (``ViewerStreamState``), the writer waiting
/// on it, and what the operator sees of it. The feed's poll thread offers fragments without ever
/// blocking; the viewer's socket task takes frames with ``next()``.
public final class ViewerConnection: Sendable {
    /// This relay's own key for it.
    public let number: UInt64
    /// The session id shown to operators and used in commands: `v-` and 8 random hex digits,
    /// unique across the fleet.
    public let id: String
    /// `IP:PORT` of the peer.
    public let remoteAddress: String
    /// The peer's IP address (what a kick bans besides the client id).
    public let remoteHost: String
    public let userAgent: String
    /// The id the page sends (`?client=`), which a kick bans for a while; empty if none.
    public let clientID: String
    public let connectedAtMilliseconds: Int64
    /// When its watch token expires (Unix seconds), when the relay requires tokens.
    public let watchTokenExpiresAt: Int64?

    /// Why the relay is closing this viewer (the socket task closes with it).
    public struct CloseRequest: Sendable, Equatable {
        public var code: UInt16
        public var reason: String
    }

    private struct Inner: Sendable {
        var topic: TopicName
        var stream: ViewerStreamState
        var waiter: CheckedContinuation<ViewerDelivery?, Never>?
        var closed = false
        var closeRequest: CloseRequest?
        var bytesWritten: Int64 = 0
        var liveDelayMilliseconds: Int64?
        var pageState: String?
    }

    private let inner: Locked<Inner>

    init(number: UInt64, id: String, topic: TopicName, remoteAddress: String, remoteHost: String, userAgent: String, clientID: String,
         connectedAtMilliseconds: Int64, watchTokenExpiresAt: Int64? = nil, maxQueuedBytes: Int) {
        self.watchTokenExpiresAt = watchTokenExpiresAt
        self.number = number
        self.id = id
        self.remoteAddress = remoteAddress
        self.remoteHost = remoteHost
        self.userAgent = userAgent
        self.clientID = clientID
        self.connectedAtMilliseconds = connectedAtMilliseconds
        self.inner = Locked(Inner(topic: topic, stream: ViewerStreamState(maxQueuedBytes: maxQueuedBytes)))
    }

    /// The topic it watches (a switch changes it).
    public var topic: TopicName { inner.withLock { $0.topic } }

    func setTopic(_ topic: TopicName) { inner.withLock { $0.topic = topic } }

    /// Offers a fragment (from the feed's thread). Never blocks.
    @discardableResult
    func offer(_ fragment: StreamFragment, joinGroup: [StreamFragment] = []) -> ViewerStreamState.OfferResult {
        update { $0.offer(fragment, joinGroup: joinGroup) }
    }

    /// Queues a JSON control message.
    public func send(notice: String) {
        update { $0.enqueueNotice(notice) }
    }

    /// The viewer starts over at the next keyframe, with a reset.
    func restart() {
        update { $0.restart() }
    }

    /// Fragments dropped because this viewer was too slow.
    public var skippedForSlowness: Int { inner.withLock { $0.stream.skippedForSlowness } }

    /// Bytes written to its socket so far.
    public var bytesWritten: Int64 { inner.withLock { $0.bytesWritten } }

    /// The page's own report: live delay and state.
    public var pageReport: (liveDelayMilliseconds: Int64?, state: String?) {
        inner.withLock { ($0.liveDelayMilliseconds, $0.pageState) }
    }

    /// Records that `bytes` were written to the socket.
    public func didWrite(bytes: Int) {
        inner.withLock { $0.bytesWritten += Int64(bytes) }
    }

    /// The page reported its live delay and state.
    public func report(liveDelayMilliseconds: Int64?, state: String?) {
        inner.withLock {
            if let liveDelayMilliseconds { $0.liveDelayMilliseconds = liveDelayMilliseconds }
            if let state { $0.pageState = String(state.prefix(32)) }
        }
    }

    /// Set when the relay decided to close this viewer (kick): the socket task closes with it.
    public var closeRequest: CloseRequest? { inner.withLock { $0.closeRequest } }

    private func update<R>(_ body: (inout ViewerStreamState) -> R) -> R {
        let (result, resume) = inner.withLock { inner -> (R, (CheckedContinuation<ViewerDelivery?, Never>, ViewerDelivery)?) in
            let result = body(&inner.stream)
            if let waiter = inner.waiter, let delivery = inner.stream.nextDelivery() {
                inner.waiter = nil
                return (result, (waiter, delivery))
            }
            return (result, nil)
        }
        if let (waiter, delivery) = resume { waiter.resume(returning: delivery) }
        return result
    }

    /// The next frame to write; waits until there is one. nil once the viewer is closed or the
    /// calling task is cancelled.
    public func next() async -> ViewerDelivery? {
        if let ready = inner.withLock({ inner -> ViewerDelivery?? in
            if inner.closed { return .some(nil) }
            if let delivery = inner.stream.nextDelivery() { return .some(delivery) }
            return nil
        }) {
            return ready
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = inner.withLock { inner -> ViewerDelivery?? in
                    if inner.closed || Task.isCancelled { return .some(nil) }
                    if let delivery = inner.stream.nextDelivery() { return .some(delivery) }
                    inner.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            close()
        }
    }

    /// Ends the viewer: a waiting ``next()`` returns nil. With a request, the socket task closes
    /// the WebSocket with its code and reason. Idempotent; the first request wins.
    public func close(_ request: CloseRequest? = nil) {
        let waiter = inner.withLock { inner -> CheckedContinuation<ViewerDelivery?, Never>? in
            inner.closed = true
            if inner.closeRequest == nil { inner.closeRequest = request }
            defer { inner.waiter = nil }
            return inner.waiter
        }
        waiter?.resume(returning: nil)
    }
}
