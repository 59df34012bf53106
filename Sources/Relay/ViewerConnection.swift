import Kafka
import Logging

/// One viewer's side of the fan-out: its bounded queue (``ViewerStreamState``) and the writer
/// waiting on it. The feed's poll thread offers fragments without ever blocking; the viewer's
/// socket task takes frames with ``next()``.
public final class ViewerConnection: Sendable {
    public let id: UInt64
    public let topic: TopicName
    public let remoteAddress: String

    private struct Inner: Sendable {
        var stream: ViewerStreamState
        var waiter: CheckedContinuation<ViewerFrame?, Never>?
        var closed = false
    }

    private let inner: Locked<Inner>

    init(id: UInt64, topic: TopicName, remoteAddress: String, maxQueuedBytes: Int) {
        self.id = id
        self.topic = topic
        self.remoteAddress = remoteAddress
        self.inner = Locked(Inner(stream: ViewerStreamState(maxQueuedBytes: maxQueuedBytes)))
    }

    /// Offers a fragment (from the feed's thread). Never blocks.
    @discardableResult
    func offer(_ fragment: StreamFragment) -> ViewerStreamState.OfferResult {
        update { $0.offer(fragment) }
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

    /// Bytes queued for this viewer right now.
    public var queuedBytes: Int { inner.withLock { $0.stream.queuedBytes } }

    private func update<R>(_ body: (inout ViewerStreamState) -> R) -> R {
        let (result, resume) = inner.withLock { inner -> (R, (CheckedContinuation<ViewerFrame?, Never>, ViewerFrame)?) in
            let result = body(&inner.stream)
            if let waiter = inner.waiter, let frame = inner.stream.next() {
                inner.waiter = nil
                return (result, (waiter, frame))
            }
            return (result, nil)
        }
        if let (waiter, frame) = resume { waiter.resume(returning: frame) }
        return result
    }

    /// The next frame to write; waits until there is one. nil once the viewer is closed or the
    /// calling task is cancelled.
    public func next() async -> ViewerFrame? {
        if let ready = inner.withLock({ inner -> ViewerFrame?? in
            if inner.closed { return .some(nil) }
            if let frame = inner.stream.next() { return .some(frame) }
            return nil
        }) {
            return ready
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = inner.withLock { inner -> ViewerFrame?? in
                    if inner.closed || Task.isCancelled { return .some(nil) }
                    if let frame = inner.stream.next() { return .some(frame) }
                    inner.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            close()
        }
    }

    /// Ends the viewer: a waiting ``next()`` returns nil. Idempotent.
    public func close() {
        let waiter = inner.withLock { inner -> CheckedContinuation<ViewerFrame?, Never>? in
            inner.closed = true
            defer { inner.waiter = nil }
            return inner.waiter
        }
        waiter?.resume(returning: nil)
    }
}
