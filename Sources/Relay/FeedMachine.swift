/// The logic of one topic's feed, free of I/O: reading back to the latest join point before
/// following the topic live, joining viewers there, pausing, and restarting viewers after a hole
/// in the stream. Each event returns what to do; ``TopicFeed`` does it (queueing frames for its
/// viewers under its lock, writing sockets and seeking the reader after it), in the way of
/// swift-nio's state machines.
struct FeedMachine: Sendable {
    /// Where a viewer (or all of them) starts.
    enum Join: Sendable, Equatable {
        /// No stream to join yet: the viewer is told to wait.
        case wait
        /// The fragments from the latest join point on (the first opens with it).
        case start([StreamFragment])
    }

    /// What to do with a consumed fragment.
    enum Delivery: Sendable, Equatable {
        /// Kept for joining viewers only (still reading back, or paused).
        case keep
        /// Offer it to every viewer; `joinGroup` is what a waiting viewer starts with when the
        /// fragment made an earlier Cluster a join point. After a hole in the stream, viewers are
        /// restarted first (`restartFirst`).
        case offer(StreamFragment, joinGroup: [StreamFragment], restartFirst: Bool)
    }

    /// What to do when the reader reaches the end of what the topic holds.
    enum EndOfTopic: Sendable, Equatable {
        case nothing
        /// No join point in what was read back: read back further, from this offset.
        case readBack(from: Int64)
        /// Caught up: viewers waiting for it start (nil while paused).
        case caughtUp(Join?)
    }

    /// What to do when the operator pauses or resumes the topic.
    enum PauseChange: Sendable, Equatable {
        case nothing
        /// Viewers restart (at the next join point, after the pause) and are told.
        case pause
        /// Viewers are told, and start at the latest join point (nil while still reading back).
        case resume(Join?)
    }

    /// Where a newly added viewer stands.
    enum NewViewer: Sendable, Equatable {
        /// The topic is paused: the viewer is told.
        case paused
        /// Still reading back: the viewer starts when the feed has caught up.
        case later
        case join(Join)
    }

    let maxWindow: Int64
    let staleMilliseconds: Int64
    private(set) var cache: KeyframeCache
    /// Still reading back for the latest join point.
    private(set) var catchingUp = true
    private(set) var paused: Bool
    /// Ingest time of the newest fragment consumed live.
    private(set) var newestConsumedIngest: Int64?
    private var window: Int64
    private var scanStart: Int64 = 0
    private var lowWatermark: Int64 = 0
    /// The topic did not exist when the feed started: it is read from its first record.
    private var waitedForTopic = false

    init(cacheBytes: Int, window: Int64, maxWindow: Int64, staleMilliseconds: Int64, paused: Bool) {
        self.cache = KeyframeCache(maxBytes: cacheBytes)
        self.window = window
        self.maxWindow = maxWindow
        self.staleMilliseconds = staleMilliseconds
        self.paused = paused
    }

    // MARK: - Locating

    /// The topic does not exist yet: nothing to read back, and once it exists it is read from its
    /// first record (all of it is new to the viewers waiting).
    mutating func topicMissing(nowMilliseconds: Int64) -> Join? {
        waitedForTopic = true
        return finishCatchingUp(nowMilliseconds: nowMilliseconds)
    }

    /// Nothing to read back (the topic is being created): viewers waiting start now.
    mutating func nothingToReadBack(nowMilliseconds: Int64) -> Join? {
        finishCatchingUp(nowMilliseconds: nowMilliseconds)
    }

    /// The topic's watermarks: the offset to start reading at, and viewers to start if there is
    /// nothing to read back.
    mutating func watermarks(low: Int64, high: Int64, nowMilliseconds: Int64) -> (from: Int64, join: Join?) {
        if waitedForTopic { return (low, nil) }  // all of it is new to the viewers waiting
        if high <= low { return (high, finishCatchingUp(nowMilliseconds: nowMilliseconds)) }
        let from = max(low, high - window)
        scanStart = from
        lowWatermark = low
        return (from, nil)
    }

    // MARK: - Reading

    /// A fragment of the topic, in Kafka order.
    mutating func consumed(_ fragment: StreamFragment) -> Delivery {
        // A hole in the stream (records lost to retention): viewers restart at a join point
        // (this fragment's, if it has one further in).
        let hole = cache.last.map { last in
            !fragment.isKeyframe && !fragment.isEnd && last.session == fragment.session && last.sequence &+ 1 != fragment.sequence
        } ?? false
        let joinGroup = cache.add(fragment) ? cache.fragments : []
        guard !catchingUp else { return .keep }
        newestConsumedIngest = fragment.ingestMilliseconds
        guard !paused else { return .keep }
        return .offer(fragment, joinGroup: joinGroup, restartFirst: hole)
    }

    /// The reader reached the end of what the topic holds (at `offset`).
    mutating func reachedEnd(at offset: Int64, nowMilliseconds: Int64) -> EndOfTopic {
        guard catchingUp else { return .nothing }
        if cache.isEmpty, scanStart > lowWatermark, window < maxWindow {
            window *= 4
            scanStart = max(lowWatermark, offset - window)
            return .readBack(from: scanStart)
        }
        return .caughtUp(finishCatchingUp(nowMilliseconds: nowMilliseconds))
    }

    /// The reader fell behind what the cluster keeps: viewers restart at the next join point.
    mutating func offsetOutOfRange() {
        cache.clear()
    }

    // MARK: - Viewers and the operator

    mutating func viewerAdded(nowMilliseconds: Int64) -> NewViewer {
        if paused { return .paused }
        guard !catchingUp else { return .later }
        return .join(join(nowMilliseconds: nowMilliseconds))
    }

    mutating func setPaused(_ paused: Bool, nowMilliseconds: Int64) -> PauseChange {
        guard self.paused != paused else { return .nothing }
        self.paused = paused
        if paused { return .pause }
        return .resume(catchingUp ? nil : join(nowMilliseconds: nowMilliseconds))
    }

    // MARK: - Helpers

    private mutating func finishCatchingUp(nowMilliseconds: Int64) -> Join? {
        guard catchingUp else { return nil }
        catchingUp = false
        cache.dropIfStale(nowMilliseconds: nowMilliseconds, maxAgeMilliseconds: staleMilliseconds)
        return paused ? nil : join(nowMilliseconds: nowMilliseconds)
    }

    /// Where a viewer starts now: the latest join point, unless the stream went stale (a
    /// publisher that vanished without an end marker).
    private mutating func join(nowMilliseconds: Int64) -> Join {
        cache.dropIfStale(nowMilliseconds: nowMilliseconds, maxAgeMilliseconds: staleMilliseconds)
        return cache.isEmpty ? .wait : .start(cache.fragments)
    }
}
