import Foundation
import Kafka
import Logging
import Metrics

/// The relay core: publishers in, Kafka in the middle, viewers out. One producer for the whole
/// relay, one ``TopicFeed`` per watched topic, and a bounded queue per viewer.
///
/// The HTTP/WebSocket layer calls this; it knows nothing about sockets.
public final class Relay: Sendable {
    public let settings: RelaySettings
    public let kafka: KafkaConfiguration
    private let logger: Logger
    private let producer: KafkaProducer
    private let admin: KafkaAdmin
    private let createTopic: @Sendable (TopicName) throws -> Void
    private let sessions: Locked<[UInt32: PublishSession]>
    private let state = Locked(State())
    private let probe: Locked<KafkaConsumer?> = Locked(nil)
    private let lastKafkaError: Locked<(message: String, milliseconds: Int64)?>

    private struct State: Sendable {
        var publishers: [TopicName: PublishSession] = [:]
        var feeds: [TopicName: TopicFeed] = [:]
        var createdTopics: Set<TopicName> = []
        var nextSessionNumber: UInt32 = 1
        var nextViewerID: UInt64 = 1
        var shuttingDown = false
    }

    private let rejected: @Sendable (String) -> Void
    private let fragmentsIn = Counter(label: "kvb_fragments_in_total")
    private let bytesIn = Counter(label: "kvb_bytes_in_total")

    /// - Parameter createTopic: how to create a stream's topic; defaults to Kafka's CreateTopics
    ///   (1 partition). The embedded cluster passes its own (the mock ignores CreateTopics).
    public init(
        settings: RelaySettings,
        kafka: KafkaConfiguration,
        logger: Logger,
        createTopic: (@Sendable (TopicName) throws -> Void)? = nil
    ) throws(KafkaError) {
        self.settings = settings
        self.kafka = kafka
        self.logger = logger
        let sessions = Locked<[UInt32: PublishSession]>([:])
        self.sessions = sessions
        let lastKafkaError = Locked<(message: String, milliseconds: Int64)?>(nil)
        self.lastKafkaError = lastKafkaError
        self.producer = try KafkaProducer(configuration: kafka, logger: logger, onError: { error in
            lastKafkaError.withLock { $0 = (error.message, currentMilliseconds()) }
        }) { report in
            let session = sessions.withLock { $0[UInt32(truncatingIfNeeded: report.id >> 32)] }
            session?.delivered(error: report.error?.message)
        }
        let admin = try KafkaAdmin(configuration: kafka, logger: logger)
        self.admin = admin
        if let createTopic {
            self.createTopic = createTopic
        } else {
            self.createTopic = { topic in try admin.createTopic(topic.value, partitions: 1) }
        }
        self.rejected = { reason in Counter(label: "kvb_rejected_total", dimensions: [("reason", reason)]).increment() }
    }

    // MARK: - Publishing

    /// Accepts a publisher for `topic`, or refuses it when the topic already has one here or,
    /// judging by the topic's newest record, on another relay.
    public func openPublisher(topic: TopicName, remoteAddress: String) async throws(RelayError) -> PublishSession {
        if state.withLock({ $0.publishers[topic] != nil || $0.shuttingDown }) {
            throw refuse(state.withLock { $0.shuttingDown } ? .shuttingDown : .topicBusy(topic.value))
        }
        if let latest = await latestFragment(of: topic), !latest.isEnd,
           currentMilliseconds() - latest.ingestMilliseconds < 3000
        {
            throw refuse(.topicBusy("\(topic.value) (published through relay \(latest.relay))"))
        }
        let created = try state.withLock { (state) throws(RelayError) -> (PublishSession, Bool) in
            guard state.publishers[topic] == nil else { throw .topicBusy(topic.value) }
            let session = PublishSession(number: state.nextSessionNumber, topic: topic, remoteAddress: remoteAddress,
                                         relayID: settings.relayID, maxElementBytes: settings.maxElementBytes)
            state.nextSessionNumber &+= 1
            state.publishers[topic] = session
            return (session, state.createdTopics.insert(topic).inserted)
        }
        let (session, isNewTopic) = created
        sessions.withLock { $0[session.number] = session }
        if isNewTopic {
            let createTopic = self.createTopic
            let logger = self.logger
            DispatchQueue.global().async {
                do { try createTopic(topic) } catch { logger.warning("could not create topic \(topic): \(error); relying on auto-creation") }
            }
        }
        logger.info("publisher connected", metadata: ["topic": "\(topic)", "session": "\(session.id)", "remote": "\(remoteAddress)"])
        return session
    }

    /// Segments a chunk from the publisher and produces the fragments it completed.
    public func publish(_ chunk: some Collection<UInt8>, session: PublishSession) async throws(RelayError) {
        let fragments: [StreamFragment]
        do {
            fragments = try session.receive(chunk, nowMilliseconds: currentMilliseconds())
        } catch {
            throw refuse(error)
        }
        bytesIn.increment(by: chunk.count)
        for fragment in fragments {
            try await produce(fragment, session: session)
            fragmentsIn.increment()
        }
    }

    private func produce(_ fragment: StreamFragment, session: PublishSession) async throws(RelayError) {
        let message = fragment.kafkaMessage(topic: session.topic)
        let id = UInt64(session.number) << 32 | (fragment.sequence & 0xFFFF_FFFF)
        var waited = 0
        while true {
            do {
                try producer.send(message, id: id)
                return
            } catch where error.isQueueFull && waited < 5000 {
                // librdkafka's queue is full: Kafka is slow or away. Wait a little, bounded.
                waited += 10
                try? await Task.sleep(for: .milliseconds(10))
            } catch {
                throw refuse(.kafkaUnavailable(error.message))
            }
        }
    }

    /// Ends a publisher's session: viewers are told it ended.
    public func closePublisher(_ session: PublishSession) async {
        let wasCurrent = state.withLock { state -> Bool in
            guard state.publishers[session.topic] === session else { return false }
            state.publishers[session.topic] = nil
            return true
        }
        if wasCurrent, session.counters.fragments > 0 {
            try? await produce(session.endMarker(nowMilliseconds: currentMilliseconds()), session: session)
        }
        // Keep the session a moment for late delivery reports, then forget it.
        let sessions = self.sessions
        let number = session.number
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { _ = sessions.withLock { $0.removeValue(forKey: number) } }
        logger.info("publisher disconnected", metadata: ["topic": "\(session.topic)", "session": "\(session.id)"])
    }

    private func refuse(_ error: RelayError) -> RelayError {
        rejected(error.label)
        return error
    }

    // MARK: - Watching

    /// Adds a viewer of `topic`; frames arrive through ``ViewerConnection/next()``.
    public func openViewer(topic: TopicName, remoteAddress: String) async throws(RelayError) -> ViewerConnection {
        let (viewer, feed, isNew) = try state.withLock { (state) throws(RelayError) -> (ViewerConnection, TopicFeed?, Bool) in
            guard !state.shuttingDown else { throw .shuttingDown }
            let viewer = ViewerConnection(id: state.nextViewerID, topic: topic, remoteAddress: remoteAddress,
                                          maxQueuedBytes: settings.viewerQueueBytes)
            state.nextViewerID &+= 1
            if let feed = state.feeds[topic] { return (viewer, feed, false) }
            return (viewer, nil, true)
        }
        viewer.send(notice: ViewerNotice.hello(topic: topic, relay: settings.relayID))
        if let feed, !isNew {
            feed.add(viewer)
            return viewer
        }
        let newFeed: TopicFeed
        do {
            newFeed = try TopicFeed(topic: topic, kafka: kafka, settings: settings, logger: logger)
        } catch {
            throw refuse(.kafkaUnavailable(error.message))
        }
        // Two viewers may race to create the feed: the first one registered wins.
        let winner = state.withLock { state -> TopicFeed in
            if let existing = state.feeds[topic] { return existing }
            state.feeds[topic] = newFeed
            return newFeed
        }
        winner.add(viewer)
        if winner === newFeed {
            await runBlocking { newFeed.start() }
        } else {
            await runBlocking { newFeed.close() }
        }
        return viewer
    }

    /// Removes a viewer; its topic's consumer closes after the linger time if nobody else watches.
    public func closeViewer(_ viewer: ViewerConnection) {
        viewer.close()
        guard let feed = state.withLock({ $0.feeds[viewer.topic] }) else { return }
        guard feed.remove(viewer) == 0 else { return }
        let linger = settings.feedLingerMilliseconds
        let state = self.state
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(linger))) {
            let idle = state.withLock { state -> TopicFeed? in
                guard let current = state.feeds[viewer.topic], current === feed, feed.viewerCount == 0 else { return nil }
                state.feeds[viewer.topic] = nil
                return feed
            }
            idle?.close()
        }
    }

    // MARK: - Topics

    /// The newest fragment of a topic, read from Kafka (any relay's). nil if none. Blocking work
    /// runs off the cooperative pool.
    func latestFragment(of topic: TopicName) async -> StreamFragment? {
        let admin = self.admin
        let kafka = self.kafka
        let logger = self.logger
        let probe = self.probe
        return await runBlocking {
            guard let marks = try? admin.queryWatermarks(topic: topic.value, timeoutMilliseconds: 2000), marks.high > marks.low else {
                return nil
            }
            return probe.withLock { probe -> StreamFragment? in
                if probe == nil { probe = try? KafkaConsumer(configuration: kafka, logger: logger) }
                guard let consumer = probe else { return nil }
                guard (try? consumer.assign(topic: topic.value, offset: .offset(marks.high - 1))) != nil else { return nil }
                let deadline = Date().addingTimeInterval(2)
                while Date() < deadline {
                    switch consumer.poll(timeoutMilliseconds: 100) {
                    case .message(let message)?: return StreamFragment(message)
                    case .endOfPartition?, .error?, nil: continue
                    }
                }
                return nil
            }
        }
    }

    /// Every stream topic in the cluster with what this relay knows of it.
    public func topicSummaries() async -> [TopicSummary] {
        let admin = self.admin
        let listed = await runBlocking { () -> [KafkaTopicMetadata] in (try? admin.listTopics(timeoutMilliseconds: 3000)) ?? [] }
        var summaries: [TopicSummary] = []
        for metadata in listed {
            guard let topic = try? TopicName(metadata.name) else { continue }
            let latest = await latestFragment(of: topic)
            let high = await runBlocking { (try? admin.queryWatermarks(topic: topic.value, timeoutMilliseconds: 2000).high) ?? 0 }
            let (local, viewers) = state.withLock { ($0.publishers[topic], $0.feeds[topic]?.viewerCount ?? 0) }
            let recent = latest.map { !$0.isEnd && currentMilliseconds() - $0.ingestMilliseconds < settings.staleStreamMilliseconds } ?? false
            summaries.append(TopicSummary(
                name: topic.value, live: local != nil || recent,
                publisherRelay: local != nil ? settings.relayID : latest?.relay, highWatermark: high, viewers: viewers
            ))
        }
        return summaries.sorted { $0.name < $1.name }
    }

    /// The producer's latest Kafka error, if it happened within the last `withinMilliseconds`.
    public func recentKafkaError(withinMilliseconds: Int64 = 30_000) -> String? {
        lastKafkaError.withLock { last in
            guard let last, currentMilliseconds() - last.milliseconds < withinMilliseconds else { return nil }
            return last.message
        }
    }

    /// Live publisher sessions on this relay.
    public var publishers: [PublishSession] { state.withLock { Array($0.publishers.values) } }

    /// Viewers on this relay.
    public var viewerCount: Int { state.withLock { $0.feeds.values.reduce(0) { $0 + $1.viewerCount } } }

    // MARK: - Shutdown

    /// Refuses new connections from now on.
    public func beginShutdown() {
        state.withLock { $0.shuttingDown = true }
    }

    /// Flushes the producer (up to `timeoutMilliseconds`) and closes every Kafka handle.
    public func shutdown(timeoutMilliseconds: Int32 = 5000) async {
        beginShutdown()
        let feeds = state.withLock { state -> [TopicFeed] in
            defer { state.feeds.removeAll() }
            return Array(state.feeds.values)
        }
        let producer = self.producer
        let admin = self.admin
        let probe = self.probe
        let logger = self.logger
        await runBlocking {
            for feed in feeds { feed.close() }
            if !producer.flush(timeoutMilliseconds: timeoutMilliseconds) {
                logger.warning("\(producer.outstanding) fragments were not delivered before shutdown")
            }
            producer.close()
            admin.close()
            probe.withLock { $0?.close() }
        }
    }
}
