import ControlPlane
import Kafka
import Logging
import NIOCore

/// One viewer's side of the fan-out: its bounded queue (``ViewerStreamState``), its socket
/// (``ViewerTransport``) and what the operator sees of it. The feed queues frames without ever
/// blocking, then has them written with ``pump()`` on the socket's own thread; a socket that takes
/// nothing keeps its frames queued, and the queue's bound decides what is skipped.
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
    let transport: any ViewerTransport

    /// Why the relay is closing this viewer (the socket task closes with it).
    public struct CloseRequest: Sendable, Equatable {
        public var code: UInt16
        public var reason: String
    }

    private struct Inner: Sendable {
        var topic: TopicName
        var stream: ViewerStreamState
        var closeWaiter: CheckedContinuation<Void, Never>?
        var closed = false
        var closeRequest: CloseRequest?
        /// Closed because its socket took nothing for the stall timeout.
        var stalled = false
        var bytesWritten: Int64 = 0
        /// Since when frames have waited for a socket that takes nothing.
        var blockedSince: Int64?
        var liveDelayMilliseconds: Int64?
        var pageState: String?
        var glassMilliseconds: Int64?
    }

    private let inner: Locked<Inner>

    /// Watching from an earlier time (`?from=`): behind on purpose, fed by its own reader.
    public let watchesThePast: Bool

    init(number: UInt64, id: String, topic: TopicName, remoteAddress: String, remoteHost: String, userAgent: String, clientID: String,
         connectedAtMilliseconds: Int64, watchTokenExpiresAt: Int64? = nil, maxQueuedBytes: Int, watchesThePast: Bool = false,
         transport: any ViewerTransport) {
        self.watchTokenExpiresAt = watchTokenExpiresAt
        self.watchesThePast = watchesThePast
        self.number = number
        self.id = id
        self.remoteAddress = remoteAddress
        self.remoteHost = remoteHost
        self.userAgent = userAgent
        self.clientID = clientID
        self.connectedAtMilliseconds = connectedAtMilliseconds
        self.transport = transport
        self.inner = Locked(Inner(topic: topic, stream: ViewerStreamState(maxQueuedBytes: maxQueuedBytes)))
    }

    /// Closed by the relay or because its socket went.
    public var isClosed: Bool { inner.withLock { $0.closed } }

    /// The topic it watches (a switch changes it).
    public var topic: TopicName { inner.withLock { $0.topic } }

    func setTopic(_ topic: TopicName) { inner.withLock { $0.topic = topic } }

    /// Queues a fragment (from the feed, under its lock). Never blocks; call ``pump()`` or
    /// ``Fanout/write(groups:metrics:)`` afterwards.
    @discardableResult
    func offer(_ fragment: StreamFragment, joinGroup: [StreamFragment] = []) -> ViewerStreamState.OfferResult {
        inner.withLock { $0.stream.offer(fragment, joinGroup: joinGroup) }
    }

    /// Queues a JSON control message and has it written.
    public func send(notice: String) {
        queue(notice: notice)
        schedulePump()
    }

    /// Queues a JSON control message (written by the next pump).
    func queue(notice: String) {
        inner.withLock { $0.stream.enqueueNotice(notice) }
    }

    /// The viewer starts over at the next keyframe, with a reset.
    func restart() {
        inner.withLock { $0.stream.restart() }
    }

    /// Fragments dropped because this viewer was too slow.
    public var skippedForSlowness: Int { inner.withLock { $0.stream.skippedForSlowness } }

    /// Bytes written to its socket so far.
    public var bytesWritten: Int64 { inner.withLock { $0.bytesWritten } }

    /// The page's own report: live delay, state, and its latest glass-to-glass figure.
    public var pageReport: (liveDelayMilliseconds: Int64?, state: String?, glassMilliseconds: Int64?) {
        inner.withLock { ($0.liveDelayMilliseconds, $0.pageState, $0.glassMilliseconds) }
    }

    /// The page reported its live delay and state, and the glass-to-glass delays it measured
    /// (oldest first; none when its stream carries no clock pattern).
    public func report(liveDelayMilliseconds: Int64?, state: String?, glassMilliseconds: [Int64] = []) {
        inner.withLock { inner in
            if let liveDelayMilliseconds { inner.liveDelayMilliseconds = liveDelayMilliseconds }
            if let state { inner.pageState = String(state.prefix(32)) }
            if let latest = glassMilliseconds.last { inner.glassMilliseconds = latest }
        }
    }

    /// Set when the relay decided to close this viewer (kick): the socket task closes with it.
    public var closeRequest: CloseRequest? { inner.withLock { $0.closeRequest } }

    /// Closed because its socket took nothing for the stall timeout (the socket task cuts the
    /// connection: it would not read a close frame either).
    public var isStalled: Bool { inner.withLock { $0.stalled } }

    /// The relay's periodic look at a viewer (``ViewerSweeper``): closes it as stalled when its
    /// frames have waited longer than `stallMilliseconds`, and otherwise has frames that waited
    /// for a full socket written, now that it may have drained.
    func sweep(nowMilliseconds: Int64, stallMilliseconds: Int64) {
        enum Verdict { case fine, pump, stalled(CheckedContinuation<Void, Never>?) }
        let verdict = inner.withLock { inner -> Verdict in
            guard !inner.closed else { return .fine }
            if let since = inner.blockedSince, nowMilliseconds - since > stallMilliseconds {
                inner.stalled = true
                inner.closed = true
                defer { inner.closeWaiter = nil }
                return .stalled(inner.closeWaiter)
            }
            return inner.stream.queuedFrameCount > 0 ? .pump : .fine
        }
        switch verdict {
        case .fine: break
        case .pump: schedulePump()
        case .stalled(let waiter): waiter?.resume()
        }
    }

    /// Has ``pump()`` run on the socket's thread.
    public func schedulePump() {
        transport.execute { [self] in _ = pump() }
    }

    /// What one pump wrote.
    struct Written {
        var frames = 0
        var bytes = 0
        /// Ingest time of the newest fragment written.
        var newestIngestMilliseconds: Int64?
        var topic: TopicName?
    }

    /// On the socket's thread: writes everything queued, if the socket takes it. Frames wait in
    /// the queue while it does not (the queue's bound then skips the viewer ahead).
    @discardableResult
    func pump() -> Written {
        guard transport.isWritable else {
            inner.withLock { inner in
                if inner.blockedSince == nil, inner.stream.queuedFrameCount > 0 { inner.blockedSince = currentMilliseconds() }
            }
            return Written()
        }
        var written = Written()
        // One frame at a time, so nothing is gathered (or allocated) per viewer; the lock is
        // uncontended but for the feed queueing the next fragment. The usual case (one frame
        // queued) takes the lock once.
        var more = true
        while more, let frame = inner.withLock({ inner -> ViewerFrame? in
            inner.blockedSince = nil
            if written.topic == nil { written.topic = inner.topic }
            guard !inner.closed, let delivery = inner.stream.nextDelivery() else { return nil }
            if case .binary(let buffer) = delivery.frame {
                written.bytes += buffer.readableBytes
                inner.bytesWritten += Int64(buffer.readableBytes)
                if let ingest = delivery.ingestMilliseconds { written.newestIngestMilliseconds = ingest }
            }
            more = inner.stream.queuedFrameCount > 0
            return delivery.frame
        }) {
            transport.write(frame)
            written.frames += 1
        }
        if written.frames > 0 { transport.flush() }
        return written
    }

    /// Waits until the viewer is closed (by the relay, or because the calling task is cancelled).
    public func waitUntilClosed() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let closedAlready = inner.withLock { inner -> Bool in
                    if inner.closed || Task.isCancelled { return true }
                    inner.closeWaiter = continuation
                    return false
                }
                if closedAlready { continuation.resume() }
            }
        } onCancel: {
            close()
        }
    }

    /// Ends the viewer: nothing more is written, and ``waitUntilClosed()`` returns. With a request,
    /// the socket task closes the WebSocket with its code and reason. Idempotent; the first
    /// request wins.
    public func close(_ request: CloseRequest? = nil) {
        let waiter = inner.withLock { inner -> CheckedContinuation<Void, Never>? in
            inner.closed = true
            if inner.closeRequest == nil { inner.closeRequest = request }
            defer { inner.closeWaiter = nil }
            return inner.closeWaiter
        }
        waiter?.resume()
    }
}

/// Writes queued frames to many viewers: one task per executor (event loop), each pumping its
/// viewers, with metrics recorded once per task rather than per viewer.
enum Fanout {
    /// `groups`: viewers grouped by their transport's executor.
    static func write(groups: [[ViewerConnection]], metrics: TopicMetrics) {
        for group in groups {
            guard let executor = group.first?.transport else { continue }
            executor.execute {
                // Viewers of one group almost always watch one topic: totals for it are kept
                // aside, so no dictionary is touched per viewer.
                var current: (topic: TopicName, bytes: Int, newest: Int64?)?
                var others: [TopicName: (bytes: Int, newest: Int64?)] = [:]
                for viewer in group {
                    let written = viewer.pump()
                    guard let topic = written.topic, written.bytes > 0 else { continue }
                    let mine = current ?? (topic, 0, nil)
                    if mine.topic == topic {
                        current = (topic, mine.bytes + written.bytes, maxOptional(mine.newest, written.newestIngestMilliseconds))
                    } else {
                        let total = others[topic] ?? (0, nil)
                        others[topic] = (total.bytes + written.bytes, maxOptional(total.newest, written.newestIngestMilliseconds))
                    }
                }
                if let current { others[current.topic] = (current.bytes, current.newest) }
                let now = currentMilliseconds()
                for (topic, total) in others {
                    metrics.recordOut(topic: topic.value, bytes: total.bytes)
                    if let ingest = total.newest { metrics.recordLatency(topic: topic.value, stage: .written, milliseconds: now - ingest) }
                }
            }
        }
    }
}

private func maxOptional(_ a: Int64?, _ b: Int64?) -> Int64? {
    guard let a else { return b }
    guard let b else { return a }
    return max(a, b)
}
