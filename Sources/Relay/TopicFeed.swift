import ControlPlane
import Foundation
import Kafka
import Logging
import Metrics
import Synchronization

/// One relay's reading of one topic: however many viewers watch, the topic is read once, through
/// the relay's shared ``TopicReader``, and each viewer's bounded queue is fed from it.
///
/// On start it reads back from the high watermark until it holds the latest join point (widening
/// the window if needed), so it serves a stream that is already live with no other state; then it
/// follows the topic live.
final class TopicFeed: Sendable {
    let topic: TopicName
    private let reader: TopicReader
    private let logger: Logger
    private let settings: RelaySettings
    private let metrics: TopicMetrics
    private let health: KafkaHealthMonitor
    private let clusterTopics: ClusterTopics
    private let state: Locked<FeedState>
    /// The reader has started reading the topic at its starting offset.
    private let located = Atomic<Bool>(false)
    /// When the feed started or last read a record (ms since the epoch), for idle detection.
    private let lastRecord = Atomic<Int64>(currentMilliseconds())

    struct FeedState: Sendable {
        var viewers: [UInt64: ViewerConnection] = [:]
        /// The viewers again, by the executor that writes their sockets (see ``Fanout``).
        var groups: [ObjectIdentifier: [ViewerConnection]] = [:]
        var cache: KeyframeCache
        var catchingUp = true
        var scanStart: Int64 = 0
        var lowWatermark: Int64 = 0
        var window: Int64
        var lastError: String?
        /// The topic did not exist when the feed started: it is read from its first record.
        var waitedForTopic = false
        var paused: Bool
        /// Ingest time of the newest fragment consumed live.
        var newestConsumedIngest: Int64?
    }

    /// What the reader should do after ``locate(using:)``.
    enum LocateOutcome: Sendable, Equatable {
        case start(KafkaOffset)
        case retry(afterMilliseconds: Int64)
    }

    init(topic: TopicName, reader: TopicReader, settings: RelaySettings, metrics: TopicMetrics, health: KafkaHealthMonitor,
         clusterTopics: ClusterTopics, paused: Bool, logger: Logger) {
        self.topic = topic
        self.reader = reader
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.clusterTopics = clusterTopics
        var logger = logger
        logger[metadataKey: "topic"] = "\(topic)"
        self.logger = logger
        self.state = Locked(FeedState(cache: KeyframeCache(maxBytes: settings.keyframeCacheBytes), window: settings.catchUpWindow, paused: paused))
    }

    /// Begins reading: the reader finds where to start. Non-blocking.
    func start() {
        reader.add(self)
    }

    /// Finds where to start reading (on the reader's locator thread): back from the high watermark
    /// to the latest join point, or the beginning of a topic that did not exist until now. A topic
    /// that does not exist yet is waited for without naming it to Kafka (which could create it).
    /// While Kafka is unreachable it waits and retries, never falling back to replaying the whole
    /// retained topic.
    func locate(using reader: TopicReader) -> LocateOutcome {
        if let problem = health.current {
            noteError("waiting for Kafka: \(problem.reason)")
            return .retry(afterMilliseconds: 200)
        }
        switch clusterTopics.exists(topic.value) {
        case nil:
            noteError("waiting for Kafka: the cluster's topics could not be listed")
            return .retry(afterMilliseconds: 500)
        case false?:
            // Nothing to catch up on: viewers are told to wait, and the topic is read from its
            // first record once it exists (the reader looks again sooner when a publisher starts).
            state.withLock { $0.waitedForTopic = true }
            finishCatchingUp()
            return .retry(afterMilliseconds: 1_000)
        case true?:
            break
        }
        do {
            let marks = try reader.queryWatermarks(topic: topic.value, timeoutMilliseconds: 2000)
            if state.withLock({ $0.waitedForTopic }) {
                // The topic appeared while viewers waited: all of it is new to them.
                return .start(.offset(marks.low))
            } else if marks.high <= marks.low {
                finishCatchingUp()
                return .start(.offset(marks.high))
            } else {
                let from = max(marks.low, marks.high - settings.catchUpWindow)
                state.withLock {
                    $0.scanStart = from
                    $0.lowWatermark = marks.low
                }
                return .start(.offset(from))
            }
        } catch where error.isUnknownTopic {
            // Not created yet: read it from its first record once it exists.
            finishCatchingUp()
            return .start(.beginning)
        } catch {
            noteError("cannot read the watermarks: \(error.message)")
            return .retry(afterMilliseconds: 500)
        }
    }

    /// The reader has joined the topic to its assignment.
    func didStartReading() {
        located.store(true, ordering: .releasing)
    }

    /// Logs an error once (until it changes or the feed reads a record).
    func noteError(_ message: String) {
        let isNew = state.withLock { state -> Bool in
            defer { state.lastError = message }
            return state.lastError != message
        }
        if isNew { logger.warning("\(message)") }
    }

    /// When the feed started or last read a record.
    var lastRecordMilliseconds: Int64 { lastRecord.load(ordering: .relaxed) }

    /// Still reading back for the latest join point.
    var isCatchingUp: Bool { state.withLock { $0.catchingUp } }

    /// A record of the topic (on the reader's poll thread).
    func consumed(_ message: KafkaMessage) {
        lastRecord.store(currentMilliseconds(), ordering: .relaxed)
        guard let fragment = StreamFragment(message) else {
            Counter(label: "kvb_unreadable_records_total").increment()
            noteError("ignoring records without kvb headers (first at offset \(message.offset))")
            return
        }
        deliver(fragment)
    }

    /// The reader reached the end of what the topic holds.
    func reachedEnd(at offset: Int64) {
        caughtUp(at: offset)
    }

    /// A Kafka error about the topic (or the whole consumer).
    func failed(_ error: KafkaError) {
        noteError("Kafka: \(error.message)")
        if error.isOffsetOutOfRange {
            // Fell behind what the cluster keeps: viewers restart at the next keyframe.
            state.withLock { state in
                state.cache.clear()
                for viewer in state.viewers.values { viewer.restart() }
            }
        }
    }

    /// Queues the fragment for every viewer under the feed's lock (which keeps each viewer's
    /// frames in Kafka order), then has the sockets written after it.
    private func deliver(_ fragment: StreamFragment) {
        let now = currentMilliseconds()
        let (live, groups) = state.withLock { state -> (Bool, [[ViewerConnection]]) in
            state.lastError = nil
            if let last = state.cache.last, !fragment.isKeyframe, !fragment.isEnd,
               last.session == fragment.session, last.sequence &+ 1 != fragment.sequence
            {
                // A hole in the stream (records lost to retention): restart viewers at a join
                // point (this fragment's, if it has one further in).
                for viewer in state.viewers.values { viewer.restart() }
            }
            let joinGroup = state.cache.add(fragment) ? state.cache.fragments : []
            guard !state.catchingUp else { return (false, []) }
            state.newestConsumedIngest = fragment.ingestMilliseconds
            guard !state.paused else { return (true, []) }
            for viewer in state.viewers.values { viewer.offer(fragment, joinGroup: joinGroup) }
            return (true, Array(state.groups.values))
        }
        Fanout.write(groups: groups, metrics: metrics)
        if live, !fragment.isEnd {
            metrics.recordLatency(topic: topic.value, stage: .consumed, milliseconds: now - fragment.ingestMilliseconds)
        }
    }

    /// Pauses or resumes delivery to this feed's viewers. Kafka and the cache keep everything;
    /// on resume viewers restart at the latest keyframe.
    func setPaused(_ paused: Bool) {
        let groups = state.withLock { state -> [[ViewerConnection]] in
            guard state.paused != paused else { return [] }
            state.paused = paused
            for viewer in state.viewers.values {
                if paused {
                    viewer.restart()
                    viewer.queue(notice: ViewerNotice.paused(topic: topic))
                } else {
                    viewer.queue(notice: ViewerNotice.resumed(topic: topic))
                    if !state.catchingUp { Self.join(viewer, cache: state.cache, topic: topic) }
                }
            }
            return Array(state.groups.values)
        }
        Fanout.write(groups: groups, metrics: metrics)
    }

    /// Where this feed's consumer is, for the status document. Non-blocking.
    func consumerStatus(nowMilliseconds: Int64) -> ConsumerStatus? {
        // Asking about a topic the consumer has not been assigned would make librdkafka look it up
        // (and some clusters create what is looked up).
        guard located.load(ordering: .acquiring) else { return nil }
        guard let position = reader.position(topic: topic.value),
              let marks = reader.cachedWatermarks(topic: topic.value)
        else { return nil }
        let newest = state.withLock { $0.newestConsumedIngest }
        return ConsumerStatus(position: position, highWatermark: marks.high, newestAgeMilliseconds: newest.map { nowMilliseconds - $0 })
    }

    private func caughtUp(at offset: Int64) {
        let (widenTo, groups) = state.withLock { state -> (Int64?, [[ViewerConnection]]) in
            guard state.catchingUp else { return (nil, []) }
            if state.cache.isEmpty, state.scanStart > state.lowWatermark, state.window < settings.maxCatchUpWindow {
                state.window *= 4
                let from = max(state.lowWatermark, offset - state.window)
                state.scanStart = from
                return (from, [])
            }
            Self.finishCatchingUp(&state, topic: topic, settings: settings)
            return (nil, Array(state.groups.values))
        }
        Fanout.write(groups: groups, metrics: metrics)
        if let widenTo {
            logger.debug("no keyframe in the last records; reading back from \(widenTo)")
            reader.seek(topic.value, to: widenTo)
        }
    }

    /// Nothing (more) to read back: viewers waiting for the catch-up start now.
    private func finishCatchingUp() {
        let groups = state.withLock { state -> [[ViewerConnection]] in
            guard state.catchingUp else { return [] }
            Self.finishCatchingUp(&state, topic: topic, settings: settings)
            return Array(state.groups.values)
        }
        Fanout.write(groups: groups, metrics: metrics)
    }

    private static func finishCatchingUp(_ state: inout FeedState, topic: TopicName, settings: RelaySettings) {
        guard state.catchingUp else { return }
        state.catchingUp = false
        state.cache.dropIfStale(nowMilliseconds: currentMilliseconds(), maxAgeMilliseconds: settings.staleStreamMilliseconds)
        guard !state.paused else { return }
        for viewer in state.viewers.values { join(viewer, cache: state.cache, topic: topic) }
    }

    private static func join(_ viewer: ViewerConnection, cache: KeyframeCache, topic: TopicName) {
        if cache.isEmpty {
            viewer.queue(notice: ViewerNotice.waiting(topic: topic))
        } else {
            for fragment in cache.fragments { viewer.offer(fragment) }
        }
    }

    func add(_ viewer: ViewerConnection) {
        state.withLock { state in
            state.viewers[viewer.number] = viewer
            state.groups[viewer.transport.executorID, default: []].append(viewer)
            if state.paused {
                viewer.queue(notice: ViewerNotice.paused(topic: topic))
                return
            }
            guard !state.catchingUp else { return }
            state.cache.dropIfStale(nowMilliseconds: currentMilliseconds(), maxAgeMilliseconds: settings.staleStreamMilliseconds)
            Self.join(viewer, cache: state.cache, topic: topic)
        }
        viewer.schedulePump()
    }

    /// Removes a viewer; returns how many remain.
    @discardableResult
    func remove(_ viewer: ViewerConnection) -> Int {
        state.withLock { state in
            guard state.viewers.removeValue(forKey: viewer.number) != nil else { return state.viewers.count }
            let executor = viewer.transport.executorID
            state.groups[executor]?.removeAll { $0 === viewer }
            if state.groups[executor]?.isEmpty == true { state.groups[executor] = nil }
            return state.viewers.count
        }
    }

    var viewerCount: Int { state.withLock { $0.viewers.count } }

    var viewers: [ViewerConnection] { state.withLock { Array($0.viewers.values) } }

    /// Stops reading the topic and closes its viewers.
    func close() {
        reader.remove(self)
        state.withLock { state in
            for viewer in state.viewers.values { viewer.close() }
            state.viewers.removeAll()
            state.groups.removeAll()
        }
    }
}

/// Wall-clock time in milliseconds since the Unix epoch (the unit of `kvb-ingest-ms`).
public func currentMilliseconds() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded())
}
