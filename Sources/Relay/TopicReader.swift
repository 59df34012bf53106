import Foundation
import Kafka
import Logging

/// The relay's one Kafka consumer for every topic it watches. Topics join and leave a single
/// assignment; one thread polls it and hands each record to its topic's ``TopicFeed``, and one
/// thread makes every change to the assignment and finds where each new feed starts. So a watched
/// topic costs no consumer and no thread of its own, and the thread count does not grow with topics.
///
/// A topic with no publisher anywhere in the fleet that has been quiet for a few seconds stops
/// being fetched (it stays assigned, at its position): an idle watched topic costs nothing. It is
/// fetched again as soon as a publisher appears (this relay's own, or one in a peer's status
/// document), or when a look at its high watermark shows records it has not read.
final class TopicReader: Sendable {
    private let consumer: KafkaConsumer
    private let logger: Logger
    private let throttleMilliseconds: Int
    /// Topics with a publisher in the fleet (this relay's and its peers').
    private let liveTopics: @Sendable () -> Set<String>
    private let state = Locked(State())
    private let threads = Locked<[KafkaPollThread]>([])

    private struct State: Sendable {
        /// The feed reading each topic.
        var feeds: [String: TopicFeed] = [:]
        /// Feeds still finding where to start, and when to try next (ms since the epoch).
        var locating: [String: Int64] = [:]
        /// Topics in the consumer's assignment.
        var assigned: Set<String> = []
        /// Assignment changes for the locator thread to make, in order.
        var changes: [Change] = []
        /// Assigned topics not being fetched (idle).
        var paused: Set<String> = []
        var lastIdleCheck: Int64 = 0
        /// Where the look at paused topics' watermarks goes on from.
        var peekCursor = 0
    }

    private enum Change: Sendable {
        case unassign(String)
        case seek(String, Int64)
        case resume(String)
    }

    /// How often the locator thread looks for work when there is none.
    static let locatorIdleMilliseconds: Int64 = 50
    /// A topic with no publisher in the fleet is no longer fetched after this long without a record.
    static let quietMilliseconds: Int64 = 3_000
    /// How often idle topics are reconsidered, and how many paused ones have their watermarks looked at each time.
    static let idleCheckMilliseconds: Int64 = 1_000
    static let peeksPerCheck = 10

    init(kafka: KafkaConfiguration, throttleMilliseconds: Int, logger: Logger,
         onError: @escaping @Sendable (KafkaError) -> Void = { _ in },
         liveTopics: @escaping @Sendable () -> Set<String> = { [] }) throws(KafkaError) {
        consumer = try KafkaConsumer(configuration: kafka, logger: logger, onError: onError)
        self.throttleMilliseconds = throttleMilliseconds
        self.logger = logger
        self.liveTopics = liveTopics
    }

    /// Topics assigned but not fetched, for tests and the status.
    var pausedTopics: Set<String> { state.withLock { $0.paused } }

    /// Starts the poll and locator threads. Non-blocking.
    func start() {
        let poll = KafkaPollThread(name: "kvb-topic-reader") { [weak self] in self?.pollOnce() }
        let locate = KafkaPollThread(name: "kvb-topic-locator") { [weak self] in self?.locatorPass() }
        threads.withLock { $0 = [poll, locate] }
    }

    /// Starts reading `feed`'s topic: the locator finds where, then it joins the assignment.
    func add(_ feed: TopicFeed) {
        state.withLock { state in
            state.feeds[feed.topic.value] = feed
            state.locating[feed.topic.value] = 0
        }
    }

    /// Stops reading `feed`'s topic (if `feed` is still the one reading it).
    func remove(_ feed: TopicFeed) {
        state.withLock { state in
            let topic = feed.topic.value
            guard state.feeds[topic] === feed else { return }
            state.feeds[topic] = nil
            state.locating[topic] = nil
            state.changes.append(.unassign(topic))
        }
    }

    /// Reads `topic` from `offset` from now on (a feed widening its catch-up).
    func seek(_ topic: String, to offset: Int64) {
        state.withLock { $0.changes.append(.seek(topic, offset)) }
    }

    /// The partition leader's watermarks for `topic` (blocking, up to `timeoutMilliseconds`).
    func queryWatermarks(topic: String, timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaWatermarks {
        try consumer.queryWatermarks(topic: topic, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The next offset the consumer will return for `topic`, once it is assigned.
    func position(topic: String) -> Int64? {
        guard state.withLock({ $0.assigned.contains(topic) }) else { return nil }
        return consumer.position(topic: topic)
    }

    /// The watermarks last seen in fetch responses for `topic`, once it is assigned.
    func cachedWatermarks(topic: String) -> KafkaWatermarks? {
        guard state.withLock({ $0.assigned.contains(topic) }) else { return nil }
        return consumer.cachedWatermarks(topic: topic)
    }

    var watchedTopicCount: Int { state.withLock { $0.feeds.count } }

    /// Stops both threads and closes the consumer. Blocking.
    func close() {
        let stopping = threads.withLock { threads -> [KafkaPollThread] in
            defer { threads = [] }
            return threads
        }
        for thread in stopping { thread.stop() }
        consumer.close()
    }

    // MARK: - Threads

    private func pollOnce() {
        guard let event = consumer.poll(timeoutMilliseconds: 100) else { return }
        switch event {
        case .message(let message):
            guard let feed = state.withLock({ $0.feeds[message.topic] }) else { return }
            feed.consumed(message)
            if throttleMilliseconds > 0 { Thread.sleep(forTimeInterval: Double(throttleMilliseconds) / 1000) }
        case .endOfPartition(let topic, _, let offset):
            state.withLock { $0.feeds[topic] }?.reachedEnd(at: offset)
        case .error(let error, let topic):
            let feeds = state.withLock { state in topic.map { [state.feeds[$0]].compactMap { $0 } } ?? Array(state.feeds.values) }
            for feed in feeds { feed.failed(error) }
        }
    }

    /// Makes the pending assignment changes, then tries the feeds that are due to find their start.
    private func locatorPass() {
        let now = currentMilliseconds()
        let (changes, due) = state.withLock { state -> ([Change], [TopicFeed]) in
            defer { state.changes = [] }
            let due = state.locating.filter { $0.value <= now }.compactMap { state.feeds[$0.key] }
            return (state.changes, due)
        }
        for change in changes { apply(change) }
        for feed in due { locate(feed) }
        let checkIdle = state.withLock { state -> Bool in
            guard now - state.lastIdleCheck >= Self.idleCheckMilliseconds else { return false }
            state.lastIdleCheck = now
            return true
        }
        if checkIdle { pauseAndResumeIdleTopics(nowMilliseconds: now) }
        if changes.isEmpty && due.isEmpty { Thread.sleep(forTimeInterval: Double(Self.locatorIdleMilliseconds) / 1000) }
    }

    /// Stops fetching quiet topics nobody publishes; fetches them again when someone does, or when
    /// their high watermark is past where the consumer stopped.
    private func pauseAndResumeIdleTopics(nowMilliseconds now: Int64) {
        let live = liveTopics()
        let (candidates, resume, peek) = state.withLock { state -> ([String], [String], [String]) in
            var candidates: [String] = []
            var resume: [String] = []
            // Feeds waiting for a topic that now has a publisher look again at once.
            for topic in live where state.locating[topic] != nil { state.locating[topic] = 0 }
            for topic in state.assigned {
                guard let feed = state.feeds[topic] else { continue }
                if state.paused.contains(topic) {
                    if live.contains(topic) { resume.append(topic) }
                } else if !live.contains(topic), !feed.isCatchingUp, now - feed.lastRecordMilliseconds > Self.quietMilliseconds {
                    candidates.append(topic)
                }
            }
            let paused = state.paused.subtracting(resume).sorted()
            var peek: [String] = []
            if !paused.isEmpty {
                for step in 0..<min(Self.peeksPerCheck, paused.count) { peek.append(paused[(state.peekCursor + step) % paused.count]) }
                state.peekCursor = (state.peekCursor + peek.count) % max(1, paused.count)
            }
            return (candidates, resume, peek)
        }
        // Only a topic whose position is known is paused: the look at its watermark compares with it.
        let pause = candidates.filter { consumer.position(topic: $0) != nil }
        var wake = resume
        for topic in peek {
            guard let position = consumer.position(topic: topic),
                  let marks = try? consumer.queryWatermarks(topic: topic, timeoutMilliseconds: 500)
            else { wake.append(topic); continue }
            if marks.high > position { wake.append(topic) }
        }
        if !pause.isEmpty {
            do {
                try consumer.pause(pause.map { ($0, 0) })
                state.withLock { $0.paused.formUnion(pause) }
                logger.debug("no longer fetching \(pause.count) idle topic(s): \(pause.joined(separator: ", "))")
            } catch { logger.warning("\(error.message)") }
        }
        if !wake.isEmpty {
            do {
                try consumer.resume(wake.map { ($0, 0) })
                state.withLock { $0.paused.subtract(wake) }
                logger.debug("fetching \(wake.count) topic(s) again: \(wake.joined(separator: ", "))")
            } catch { logger.warning("\(error.message)") }
        }
    }

    /// A publisher started on `topic`: fetch it again now if it was paused, and look for it now
    /// if its feed waits for it to exist.
    func wake(_ topic: String) {
        state.withLock { state in
            if state.paused.contains(topic) { state.changes.append(.resume(topic)) }
            if state.locating[topic] != nil { state.locating[topic] = 0 }
        }
    }

    private func apply(_ change: Change) {
        switch change {
        case .unassign(let topic):
            // Still wanted if a new feed for the topic was added meanwhile: it is being located.
            let wasAssigned = state.withLock { state -> Bool in
                guard state.feeds[topic] == nil else { return false }
                state.paused.remove(topic)
                return state.assigned.remove(topic) != nil
            }
            if wasAssigned { unassign(topic) }
        case .resume(let topic):
            guard state.withLock({ $0.paused.remove(topic) != nil }) else { return }
            do { try consumer.resume([(topic, 0)]) } catch { logger.warning("\(error.message)") }
        case .seek(let topic, let offset):
            guard state.withLock({ state in state.paused.remove(topic); return state.assigned.contains(topic) }) else { return }
            unassign(topic)
            do {
                try consumer.incrementalAssign([(topic, 0, .offset(offset))])
            } catch {
                logger.error("cannot read \(topic) from \(offset): \(error.message)")
                state.withLock { _ = $0.assigned.remove(topic) }
            }
        }
    }

    private func unassign(_ topic: String) {
        do { try consumer.incrementalUnassign([(topic, 0)]) } catch { logger.warning("\(error.message)") }
    }

    private func locate(_ feed: TopicFeed) {
        let topic = feed.topic.value
        switch feed.locate(using: self) {
        case .retry(let milliseconds):
            state.withLock { state in
                if state.feeds[topic] === feed { state.locating[topic] = currentMilliseconds() + milliseconds }
            }
        case .start(let offset):
            // Assigned only if the feed is still wanted; a topic already assigned (a feed that
            // replaced another) is moved to the new start.
            let (wanted, alreadyAssigned) = state.withLock { state -> (Bool, Bool) in
                let wanted = state.feeds[topic] === feed
                if wanted { state.locating[topic] = nil }
                state.paused.remove(topic)
                return (wanted, state.assigned.contains(topic))
            }
            guard wanted else { return }
            if alreadyAssigned { unassign(topic) }
            do {
                try consumer.incrementalAssign([(topic, 0, offset)])
                state.withLock { _ = $0.assigned.insert(topic) }
                feed.didStartReading()
            } catch {
                feed.noteError("cannot read topic: \(error.message)")
                state.withLock { state in
                    _ = state.assigned.remove(topic)
                    if state.feeds[topic] === feed { state.locating[topic] = currentMilliseconds() + 500 }
                }
            }
        }
    }
}
