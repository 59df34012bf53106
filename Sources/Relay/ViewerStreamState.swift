import DequeModule
import NIOCore
import WebM

/// The fan-out decisions for one viewer, free of I/O: which frames it gets for each fragment of
/// its topic, in what order, and what is dropped when it falls behind.
///
/// A viewer starts (and restarts after falling behind, or on a new session) only at a join point
/// (a fragment's `joinAt`): it gets `reset` + the init segment when the session is new to it, then
/// bytes from that join point on. Its queue is bounded by `maxQueuedBytes`; when a fragment would overflow it,
/// everything queued is dropped and the viewer waits for the next keyframe. Nothing here ever
/// blocks the caller, so one slow viewer cannot slow the others.
public struct ViewerStreamState: Sendable {
    public enum Phase: Sendable, Equatable {
        case waitingForKeyframe
        case streaming(session: String)
    }

    /// What happened to an offered fragment.
    public enum OfferResult: Sendable, Equatable {
        case queued
        /// Not a place this viewer can start from; dropped.
        case skipped
        /// The queue overflowed: queued frames were dropped and the viewer waits for a keyframe.
        case overflowed(droppedFrames: Int)
    }

    public let maxQueuedBytes: Int
    public private(set) var phase: Phase = .waitingForKeyframe
    public private(set) var queuedBytes = 0
    /// Fragments this viewer did not get because it was too slow.
    public private(set) var skippedForSlowness = 0

    private var queue = Deque<(frame: ViewerFrame, startsSession: String?, ingestMilliseconds: Int64?)>()
    /// The session whose init segment the viewer has actually been given (dequeued).
    private var deliveredSession: String?
    /// The session the queue leads to once drained.
    private var queuedSession: String?
    private var skippedSinceLastDelivery = 0

    public init(maxQueuedBytes: Int) {
        self.maxQueuedBytes = maxQueuedBytes
    }

    public var queuedFrameCount: Int { queue.count }

    /// Offers the next fragment of the topic (in Kafka order). `joinGroup`: when this fragment made
    /// an earlier Cluster a join point, the fragments from that Cluster's start through this one
    /// (the first marked as a keyframe): a viewer waiting to start takes them all.
    public mutating func offer(_ fragment: StreamFragment, joinGroup: [StreamFragment] = []) -> OfferResult {
        if !joinGroup.isEmpty, phase != .streaming(session: fragment.session) {
            var result = OfferResult.skipped
            var dropped = 0
            for member in joinGroup {
                result = offer(member)
                if case .overflowed(let count) = result { dropped += count }
            }
            return dropped > 0 ? .overflowed(droppedFrames: dropped) : result
        }
        if fragment.isEnd {
            if queuedSession == fragment.session {
                enqueue(.text(ViewerNotice.ended(session: fragment.session)))
                phase = .waitingForKeyframe
            }
            return .queued
        }
        var overflowDrop = 0
        if queuedBytes + fragment.payload.readableBytes + (fragment.initSegment?.count ?? 0) > maxQueuedBytes, !queue.isEmpty {
            overflowDrop = dropQueue()
        }
        let result: OfferResult
        switch phase {
        case .streaming(let session) where session == fragment.session:
            enqueue(.binary(fragment.payload), ingestMilliseconds: fragment.ingestMilliseconds)
            result = .queued
        case .streaming, .waitingForKeyframe:
            guard let at = fragment.joinAt, let start = fragment.joining(at: at), let initSegment = start.initSegment else {
                phase = .waitingForKeyframe
                if queuedSession == fragment.session { skippedSinceLastDelivery += 1; skippedForSlowness += 1 }
                return overflowDrop > 0 ? .overflowed(droppedFrames: overflowDrop) : .skipped
            }
            if queuedSession == fragment.session {
                // Same stream, picked up again after falling behind.
                if skippedSinceLastDelivery > 0 { enqueue(.text(ViewerNotice.skipped(skippedSinceLastDelivery))) }
            } else {
                let mimeType = WebMInitSegment(bytes: initSegment, tracks: WebMInitSegment.parseTracks(in: initSegment)).mimeType
                enqueue(.text(ViewerNotice.reset(session: fragment.session, mimeType: mimeType)))
                enqueue(.binary(ByteBuffer(bytes: initSegment)), startsSession: fragment.session)
            }
            skippedSinceLastDelivery = 0
            enqueue(.binary(start.payload), ingestMilliseconds: fragment.ingestMilliseconds)
            phase = .streaming(session: fragment.session)
            result = .queued
        }
        return overflowDrop > 0 ? .overflowed(droppedFrames: overflowDrop) : result
    }

    /// Queues a control message (it counts toward the byte bound like anything else).
    public mutating func enqueueNotice(_ text: String) {
        enqueue(.text(text))
    }

    /// Forgets the stream position: the viewer starts again at the next keyframe, with a reset.
    public mutating func restart() {
        _ = dropQueue()
        deliveredSession = nil
        queuedSession = nil
        phase = .waitingForKeyframe
    }

    /// Takes the next frame to write to the viewer's socket.
    public mutating func next() -> ViewerFrame? { nextDelivery()?.frame }

    /// Takes the next frame with the ingest time of the fragment it carries (for latency).
    public mutating func nextDelivery() -> ViewerDelivery? {
        guard let item = queue.popFirst() else { return nil }
        queuedBytes -= item.frame.byteCount
        if let session = item.startsSession { deliveredSession = session }
        return ViewerDelivery(frame: item.frame, ingestMilliseconds: item.ingestMilliseconds)
    }

    private mutating func enqueue(_ frame: ViewerFrame, startsSession: String? = nil, ingestMilliseconds: Int64? = nil) {
        queue.append((frame, startsSession, ingestMilliseconds))
        queuedBytes += frame.byteCount
        if let startsSession { queuedSession = startsSession }
    }

    /// Drops everything queued; returns how many frames were dropped.
    private mutating func dropQueue() -> Int {
        let dropped = queue.count
        let droppedBinary = queue.filter { if case .binary = $0.frame { true } else { false } }.count
        skippedForSlowness += droppedBinary
        skippedSinceLastDelivery += droppedBinary
        queue.removeAll()
        queuedBytes = 0
        queuedSession = deliveredSession
        phase = .waitingForKeyframe
        return dropped
    }
}
