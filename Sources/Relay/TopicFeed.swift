import ControlPlane
import Foundation
import Kafka
import Logging
import Metrics
import Synchronization

/// One relay's reading of one topic: a single consumer however many viewers watch, feeding each
/// viewer's bounded queue from its own poll thread.
///
/// On start it reads back from the high watermark until it holds the latest keyframe fragment
/// (widening the window if needed), so it serves a stream that is already live with no other
/// state; then it follows the topic live.
final class TopicFeed: Sendable {
    let topic: TopicName
    private let consumer: KafkaConsumer
    private let logger: Logger
    private let settings: RelaySettings
    private let metrics: TopicMetrics
    private let health: KafkaHealthMonitor
    private let clusterTopics: ClusterTopics
    private let state: Locked<FeedState>
    /// The consumer has been assigned its starting offset (read on every poll: lock-free).
    private let located = Atomic<Bool>(false)
    private let pollThread: Locked<KafkaPollThread?> = Locked(nil)

    struct FeedState: Sendable {
        var viewers: [UInt64: ViewerConnection] = [:]
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

    init(topic: TopicName, kafka: KafkaConfiguration, settings: RelaySettings, metrics: TopicMetrics, health: KafkaHealthMonitor,
         clusterTopics: ClusterTopics, paused: Bool, logger: Logger) throws(KafkaError) {
        self.topic = topic
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.clusterTopics = clusterTopics
        var logger = logger
        logger[metadataKey: "topic"] = "\(topic)"
        self.logger = logger
        self.consumer = try KafkaConsumer(configuration: kafka, logger: logger)
        self.state = Locked(FeedState(cache: KeyframeCache(maxBytes: settings.keyframeCacheBytes), window: settings.catchUpWindow, paused: paused))
    }

    /// Begins polling on the feed's own thread, which first finds where to start. Non-blocking.
    func start() {
        let handle = KafkaPollThread(name: "kvb-feed-\(topic.value.prefix(40))") { [weak self] in
            self?.pollOnce()
        }
        pollThread.withLock { $0 = handle }
    }

    /// Finds where to start reading: back from the high watermark to the latest keyframe, or the
    /// beginning of a topic that did not exist until now. A topic that does not exist yet is
    /// waited for without naming it to Kafka (which could create it). While Kafka is unreachable
    /// it waits and retries, never falling back to replaying the whole retained topic. Returns
    /// whether it is positioned.
    private func locate() -> Bool {
        if let problem = health.current {
            noteError("waiting for Kafka: \(problem.reason)")
            Thread.sleep(forTimeInterval: 0.2)
            return false
        }
        switch clusterTopics.exists(topic.value) {
        case nil:
            noteError("waiting for Kafka: the cluster's topics could not be listed")
            Thread.sleep(forTimeInterval: 0.5)
            return false
        case false?:
            // Nothing to catch up on: viewers are told to wait, and the topic is read from its
            // first record once it exists.
            state.withLock { $0.waitedForTopic = true }
            finishCatchingUp()
            Thread.sleep(forTimeInterval: 0.25)
            return false
        case true?:
            break
        }
        let start: KafkaOffset
        do {
            let marks = try consumer.queryWatermarks(topic: topic.value, timeoutMilliseconds: 2000)
            if state.withLock({ $0.waitedForTopic }) {
                // The topic appeared while viewers waited: all of it is new to them.
                start = .offset(marks.low)
            } else if marks.high <= marks.low {
                start = .offset(marks.high)
                finishCatchingUp()
            } else {
                let from = max(marks.low, marks.high - settings.catchUpWindow)
                state.withLock {
                    $0.scanStart = from
                    $0.lowWatermark = marks.low
                }
                start = .offset(from)
            }
        } catch where error.isUnknownTopic {
            // Not created yet: read it from its first record once it exists.
            start = .beginning
            finishCatchingUp()
        } catch {
            noteError("cannot read the watermarks: \(error.message)")
            Thread.sleep(forTimeInterval: 0.5)
            return false
        }
        do {
            try consumer.assign(topic: topic.value, offset: start)
        } catch {
            noteError("cannot read topic: \(error.message)")
            Thread.sleep(forTimeInterval: 0.5)
            return false
        }
        located.store(true, ordering: .releasing)
        return true
    }

    /// Logs an error once (until it changes or the feed reads a record).
    private func noteError(_ message: String) {
        let isNew = state.withLock { state -> Bool in
            defer { state.lastError = message }
            return state.lastError != message
        }
        if isNew { logger.warning("\(message)") }
    }

    private func pollOnce() {
        guard located.load(ordering: .acquiring) || locate() else { return }
        guard let event = consumer.poll(timeoutMilliseconds: 100) else { return }
        switch event {
        case .message(let message):
            guard let fragment = StreamFragment(message) else {
                Counter(label: "kvb_unreadable_records_total").increment()
                noteError("ignoring records without kvb headers (first at offset \(message.offset))")
                return
            }
            deliver(fragment)
            if settings.consumerThrottleMilliseconds > 0 {
                Thread.sleep(forTimeInterval: Double(settings.consumerThrottleMilliseconds) / 1000)
            }
        case .endOfPartition(_, _, let offset):
            caughtUp(at: offset)
        case .error(let error):
            noteError("Kafka: \(error.message)")
            if error.isOffsetOutOfRange {
                // Fell behind what the cluster keeps: viewers restart at the next keyframe.
                state.withLock { state in
                    state.cache.clear()
                    for viewer in state.viewers.values { viewer.restart() }
                }
            }
        }
    }

    private func deliver(_ fragment: StreamFragment) {
        let now = currentMilliseconds()
        let live = state.withLock { state in
            state.lastError = nil
            if let last = state.cache.last, !fragment.isKeyframe, !fragment.isEnd,
               last.session == fragment.session, last.sequence &+ 1 != fragment.sequence
            {
                // A hole in the stream (records lost to retention): restart viewers at a keyframe.
                for viewer in state.viewers.values { viewer.restart() }
            }
            let joinGroup = state.cache.add(fragment) ? state.cache.fragments : []
            guard !state.catchingUp else { return false }
            state.newestConsumedIngest = fragment.ingestMilliseconds
            guard !state.paused else { return true }
            for viewer in state.viewers.values { viewer.offer(fragment, joinGroup: joinGroup) }
            return true
        }
        if live, !fragment.isEnd {
            metrics.recordLatency(topic: topic.value, stage: .consumed, milliseconds: now - fragment.ingestMilliseconds)
        }
    }

    /// Pauses or resumes delivery to this feed's viewers. Kafka and the cache keep everything;
    /// on resume viewers restart at the latest keyframe.
    func setPaused(_ paused: Bool) {
        state.withLock { state in
            guard state.paused != paused else { return }
            state.paused = paused
            for viewer in state.viewers.values {
                if paused {
                    viewer.restart()
                    viewer.send(notice: ViewerNotice.paused(topic: topic))
                } else {
                    viewer.send(notice: ViewerNotice.resumed(topic: topic))
                    if !state.catchingUp { Self.join(viewer, cache: state.cache, topic: topic) }
                }
            }
        }
    }

    /// Where this feed's consumer is, for the status document. Non-blocking.
    func consumerStatus(nowMilliseconds: Int64) -> ConsumerStatus? {
        // Asking about a topic the consumer has not been assigned would make librdkafka look it up
        // (and some clusters create what is looked up).
        guard located.load(ordering: .acquiring) else { return nil }
        guard let position = consumer.position(topic: topic.value),
              let marks = consumer.cachedWatermarks(topic: topic.value)
        else { return nil }
        let newest = state.withLock { $0.newestConsumedIngest }
        return ConsumerStatus(position: position, highWatermark: marks.high, newestAgeMilliseconds: newest.map { nowMilliseconds - $0 })
    }

    private func caughtUp(at offset: Int64) {
        let widenTo: Int64? = state.withLock { state in
            guard state.catchingUp else { return nil }
            if state.cache.isEmpty, state.scanStart > state.lowWatermark, state.window < settings.maxCatchUpWindow {
                state.window *= 4
                let from = max(state.lowWatermark, offset - state.window)
                state.scanStart = from
                return from
            }
            Self.finishCatchingUp(&state, topic: topic, settings: settings)
            return nil
        }
        if let widenTo {
            logger.debug("no keyframe in the last records; reading back from \(widenTo)")
            do { try consumer.assign(topic: topic.value, offset: .offset(widenTo)) } catch { logger.error("\(error)") }
        }
    }

    /// Nothing (more) to read back: viewers waiting for the catch-up start now.
    private func finishCatchingUp() {
        state.withLock { Self.finishCatchingUp(&$0, topic: topic, settings: settings) }
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
            viewer.send(notice: ViewerNotice.waiting(topic: topic))
        } else {
            for fragment in cache.fragments { viewer.offer(fragment) }
        }
    }

    func add(_ viewer: ViewerConnection) {
        state.withLock { state in
            state.viewers[viewer.number] = viewer
            if state.paused {
                viewer.send(notice: ViewerNotice.paused(topic: topic))
                return
            }
            guard !state.catchingUp else { return }
            state.cache.dropIfStale(nowMilliseconds: currentMilliseconds(), maxAgeMilliseconds: settings.staleStreamMilliseconds)
            Self.join(viewer, cache: state.cache, topic: topic)
        }
    }

    /// Removes a viewer; returns how many remain.
    @discardableResult
    func remove(_ viewer: ViewerConnection) -> Int {
        state.withLock { state in
            state.viewers[viewer.number] = nil
            return state.viewers.count
        }
    }

    var viewerCount: Int { state.withLock { $0.viewers.count } }

    var viewers: [ViewerConnection] { state.withLock { Array($0.viewers.values) } }

    /// Stops polling and closes the consumer. Blocking.
    func close() {
        let thread = pollThread.withLock { value -> KafkaPollThread? in
            defer { value = nil }
            return value
        }
        thread?.stop()
        consumer.close()
        state.withLock { state in
            for viewer in state.viewers.values { viewer.close() }
            state.viewers.removeAll()
        }
    }
}

/// Wall-clock time in milliseconds since the Unix epoch (the unit of `kvb-ingest-ms`).
public func currentMilliseconds() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded())
}
