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
        var machine: FeedMachine
        var viewers: [UInt64: ViewerConnection] = [:]
        /// The viewers again, by the executor that writes their sockets (see ``Fanout``).
        var groups: [ObjectIdentifier: [ViewerConnection]] = [:]
        var lastError: String?

        /// Queues where the viewers start (under the feed's lock, so each viewer's frames stay in
        /// Kafka order).
        func start(_ viewers: some Sequence<ViewerConnection>, at join: FeedMachine.Join, topic: TopicName) {
            for viewer in viewers {
                switch join {
                case .wait: viewer.queue(notice: ViewerNotice.waiting(topic: topic))
                case .start(let fragments): for fragment in fragments { viewer.offer(fragment) }
                }
            }
        }
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
        self.state = Locked(FeedState(machine: FeedMachine(
            cacheBytes: settings.keyframeCacheBytes, window: settings.catchUpWindow, maxWindow: settings.maxCatchUpWindow,
            staleMilliseconds: settings.staleStreamMilliseconds, paused: paused
        )))
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
            startViewers { $0.topicMissing(nowMilliseconds: $1) }
            return .retry(afterMilliseconds: 1_000)
        case true?:
            break
        }
        do {
            let marks = try reader.queryWatermarks(topic: topic.value, timeoutMilliseconds: 2000)
            var start = marks.high
            startViewers { machine, now in
                let (from, join) = machine.watermarks(low: marks.low, high: marks.high, nowMilliseconds: now)
                start = from
                return join
            }
            return .start(.offset(start))
        } catch where error.isUnknownTopic {
            // Not created yet: read it from its first record once it exists.
            startViewers { $0.nothingToReadBack(nowMilliseconds: $1) }
            return .start(.beginning)
        } catch {
            noteError("cannot read the watermarks: \(error.message)")
            return .retry(afterMilliseconds: 500)
        }
    }

    /// Runs `event` on the machine; viewers start where it says, and are written after the lock.
    private func startViewers(_ event: (inout FeedMachine, Int64) -> FeedMachine.Join?) {
        let now = currentMilliseconds()
        let groups = state.withLock { state -> [[ViewerConnection]] in
            guard let join = event(&state.machine, now) else { return [] }
            state.start(state.viewers.values, at: join, topic: topic)
            return Array(state.groups.values)
        }
        Fanout.write(groups: groups, metrics: metrics)
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
    var isCatchingUp: Bool { state.withLock { $0.machine.catchingUp } }

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
            // Fell behind what the cluster keeps: viewers restart at the next join point.
            state.withLock { state in
                state.machine.offsetOutOfRange()
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
            let wasCatchingUp = state.machine.catchingUp
            switch state.machine.consumed(fragment) {
            case .keep:
                return (!wasCatchingUp, [])
            case .offer(let fragment, let joinGroup, let restartFirst):
                for viewer in state.viewers.values {
                    if restartFirst { viewer.restart() }
                    viewer.offer(fragment, joinGroup: joinGroup)
                }
                return (true, Array(state.groups.values))
            }
        }
        Fanout.write(groups: groups, metrics: metrics)
        if live, !fragment.isEnd {
            metrics.recordLatency(topic: topic.value, stage: .consumed, milliseconds: now - fragment.ingestMilliseconds)
        }
    }

    /// Pauses or resumes delivery to this feed's viewers. Kafka and the cache keep everything;
    /// on resume viewers restart at the latest join point.
    func setPaused(_ paused: Bool) {
        let now = currentMilliseconds()
        let groups = state.withLock { state -> [[ViewerConnection]] in
            switch state.machine.setPaused(paused, nowMilliseconds: now) {
            case .nothing:
                return []
            case .pause:
                for viewer in state.viewers.values {
                    viewer.restart()
                    viewer.queue(notice: ViewerNotice.paused(topic: topic))
                }
            case .resume(let join):
                for viewer in state.viewers.values { viewer.queue(notice: ViewerNotice.resumed(topic: topic)) }
                if let join { state.start(state.viewers.values, at: join, topic: topic) }
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
        let newest = state.withLock { $0.machine.newestConsumedIngest }
        return ConsumerStatus(position: position, highWatermark: marks.high, lowWatermark: marks.low,
                              newestAgeMilliseconds: newest.map { nowMilliseconds - $0 })
    }

    private func caughtUp(at offset: Int64) {
        var readBackFrom: Int64?
        startViewers { machine, now in
            switch machine.reachedEnd(at: offset, nowMilliseconds: now) {
            case .nothing: return nil
            case .readBack(let from): readBackFrom = from; return nil
            case .caughtUp(let join): return join
            }
        }
        if let readBackFrom {
            logger.debug("no join point in the last records; reading back from \(readBackFrom)")
            reader.seek(topic.value, to: readBackFrom)
        }
    }

    func add(_ viewer: ViewerConnection) {
        let now = currentMilliseconds()
        state.withLock { state in
            state.viewers[viewer.number] = viewer
            state.groups[viewer.transport.executorID, default: []].append(viewer)
            switch state.machine.viewerAdded(nowMilliseconds: now) {
            case .paused: viewer.queue(notice: ViewerNotice.paused(topic: topic))
            case .later: break
            case .join(let join): state.start([viewer], at: join, topic: topic)
            }
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
