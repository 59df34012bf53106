import Foundation
import Kafka
import Logging

/// The relay's one Kafka consumer for every topic it watches. Topics join and leave a single
/// assignment; one thread polls it and hands each record to its topic's ``TopicFeed``, and one
/// thread makes every change to the assignment and finds where each new feed starts. So a watched
/// topic costs no consumer and no thread of its own, and the thread count does not grow with topics.
final class TopicReader: Sendable {
    private let consumer: KafkaConsumer
    private let logger: Logger
    private let throttleMilliseconds: Int
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
    }

    private enum Change: Sendable {
        case unassign(String)
        case seek(String, Int64)
    }

    /// How often the locator thread looks for work when there is none.
    static let locatorIdleMilliseconds: Int64 = 50

    init(kafka: KafkaConfiguration, throttleMilliseconds: Int, logger: Logger) throws(KafkaError) {
        consumer = try KafkaConsumer(configuration: kafka, logger: logger)
        self.throttleMilliseconds = throttleMilliseconds
        self.logger = logger
    }

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
        if changes.isEmpty && due.isEmpty { Thread.sleep(forTimeInterval: Double(Self.locatorIdleMilliseconds) / 1000) }
    }

    private func apply(_ change: Change) {
        switch change {
        case .unassign(let topic):
            // Still wanted if a new feed for the topic was added meanwhile: it is being located.
            let wasAssigned = state.withLock { state -> Bool in
                guard state.feeds[topic] == nil else { return false }
                return state.assigned.remove(topic) != nil
            }
            if wasAssigned { unassign(topic) }
        case .seek(let topic, let offset):
            guard state.withLock({ $0.assigned.contains(topic) }) else { return }
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
