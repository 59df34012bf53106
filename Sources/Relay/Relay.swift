import ControlPlane
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
    let producer: KafkaProducer
    /// Throughput and latency per topic.
    public let metrics: TopicMetrics
    public let startedAtMilliseconds: Int64
    private let admin: KafkaAdmin
    private let createTopic: @Sendable (TopicName) throws -> Void
    private let sessions: Locked<[UInt32: PublishSession]>
    private let state = Locked(State())
    private let probe: Locked<KafkaConsumer?> = Locked(nil)
    /// The latest status document of every relay (this one included), with when it arrived.
    private let peers = Locked<[String: (status: RelayStatus, receivedAt: Int64)]>([:])
    private let lastKafkaError: Locked<(message: String, milliseconds: Int64)?>

    private struct State: Sendable {
        var publishers: [TopicName: PublishSession] = [:]
        var feeds: [TopicName: TopicFeed] = [:]
        var createdTopics: Set<TopicName> = []
        var pausedTopics: Set<TopicName> = []
        /// Kicked viewers' client ids, until when they are refused.
        var bannedClients: [String: Int64] = [:]
        /// Bytes per session at the previous status, for bitrates.
        var bytesAtLastStatus: [String: Int64] = [:]
        var lastStatusMilliseconds: Int64 = 0
        var nextSessionNumber: UInt32 = 1
        var nextViewerID: UInt64 = 1
        var shuttingDown = false
    }

    private let rejected: @Sendable (String) -> Void

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
        let metrics = TopicMetrics(nowMilliseconds: currentMilliseconds())
        self.metrics = metrics
        self.startedAtMilliseconds = currentMilliseconds()
        let lastKafkaError = Locked<(message: String, milliseconds: Int64)?>(nil)
        self.lastKafkaError = lastKafkaError
        self.producer = try KafkaProducer(configuration: kafka, logger: logger, onError: { error in
            lastKafkaError.withLock { $0 = (error.message, currentMilliseconds()) }
        }) { report in
            let session = sessions.withLock { $0[UInt32(truncatingIfNeeded: report.id >> 32)] }
            let ingest = session?.delivered(sequence: UInt32(truncatingIfNeeded: report.id), error: report.error?.message)
            if let ingest, report.error == nil {
                metrics.recordLatency(topic: report.topic, stage: .acknowledged, milliseconds: currentMilliseconds() - ingest)
            }
        }
        let admin = try KafkaAdmin(configuration: kafka, logger: logger)
        self.admin = admin
        if let createTopic {
            self.createTopic = createTopic
        } else {
            self.createTopic = { topic in try admin.createTopic(topic.value, partitions: 1, timeoutMilliseconds: 3000) }
        }
        self.rejected = { reason in Counter(label: "kvb_rejected_total", dimensions: [("reason", reason)]).increment() }
    }

    // MARK: - Publishing

    /// Accepts a publisher for `topic`, or refuses it when the topic already has one here or,
    /// judging by the topic's newest record, on another relay.
    public func openPublisher(topic: TopicName, remoteAddress: String, userAgent: String = "") async throws(RelayError) -> PublishSession {
        if state.withLock({ $0.shuttingDown }) { throw refuse(.shuttingDown) }
        // A publisher that reconnects may arrive a moment before its old socket's handler has
        // finished: give the old session up to a second to go.
        var waited = 0
        while state.withLock({ $0.publishers[topic] != nil }) {
            guard waited < 1000 else { throw refuse(.topicBusy(topic.value)) }
            try? await Task.sleep(for: .milliseconds(20))
            waited += 20
        }
        // Another relay's publisher is live if the topic's newest record is recent and not an end
        // marker. Records of this relay's own sessions don't count: none is open here now.
        if let latest = await latestFragment(of: topic), !latest.isEnd, latest.relay != settings.relayID,
           currentMilliseconds() - latest.ingestMilliseconds < 3000
        {
            throw refuse(.topicBusy("\(topic.value) (published through relay \(latest.relay))"))
        }
        let created = try state.withLock { (state) throws(RelayError) -> (PublishSession, Bool) in
            guard state.publishers[topic] == nil else { throw .topicBusy(topic.value) }
            let session = PublishSession(number: state.nextSessionNumber, topic: topic, remoteAddress: remoteAddress, userAgent: userAgent,
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
            let producer = self.producer
            DispatchQueue.global().async {
                producer.prepare(topic: topic.value)
                do { try createTopic(topic) } catch { logger.notice("topic \(topic) not created (\(error)); relying on the cluster's auto-creation") }
                producer.prepare(topic: topic.value)
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
        for fragment in fragments {
            try await produce(fragment, session: session)
            metrics.recordIn(topic: session.topic.value, bytes: fragment.bytes.count)
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

    /// Creates one of the control plane's topics (1 partition), as stream topics are created.
    func createControlTopic(_ name: String) throws {
        guard let topic = try? TopicName(name, allowingControlTopics: true) else { return }
        try createTopic(topic)
    }

    private func refuse(_ error: RelayError) -> RelayError {
        rejected(error.label)
        return error
    }

    // MARK: - Watching

    /// Adds a viewer of `topic`; frames arrive through ``ViewerConnection/next()``.
    public func openViewer(topic: TopicName, remoteAddress: String, userAgent: String = "", clientID: String = "") async throws(RelayError) -> ViewerConnection {
        let now = currentMilliseconds()
        let viewer = try state.withLock { (state) throws(RelayError) -> ViewerConnection in
            guard !state.shuttingDown else { throw .shuttingDown }
            state.bannedClients = state.bannedClients.filter { $0.value > now }
            if !clientID.isEmpty, let until = state.bannedClients[clientID] {
                throw .banned(secondsLeft: Int((until - now + 999) / 1000))
            }
            defer { state.nextViewerID &+= 1 }
            return ViewerConnection(number: state.nextViewerID, topic: topic, remoteAddress: remoteAddress, userAgent: userAgent,
                                    clientID: clientID, connectedAtMilliseconds: now, maxQueuedBytes: settings.viewerQueueBytes)
        }
        viewer.send(notice: ViewerNotice.hello(topic: topic, relay: settings.relayID))
        try await attach(viewer, to: topic)
        return viewer
    }

    /// Registers `viewer` with the feed of `topic`, starting the feed if it is the first viewer.
    private func attach(_ viewer: ViewerConnection, to topic: TopicName) async throws(RelayError) {
        if let feed = state.withLock({ $0.feeds[topic] }) {
            feed.add(viewer)
            return
        }
        let newFeed: TopicFeed
        do {
            let paused = state.withLock { $0.pausedTopics.contains(topic) }
            newFeed = try TopicFeed(topic: topic, kafka: kafka, settings: settings, metrics: metrics, paused: paused, logger: logger)
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
    }

    /// Takes `viewer` off its topic's feed; the feed closes after the linger time if idle.
    private func detach(_ viewer: ViewerConnection, from topic: TopicName) {
        guard let feed = state.withLock({ $0.feeds[topic] }) else { return }
        guard feed.remove(viewer) == 0 else { return }
        let linger = settings.feedLingerMilliseconds
        let state = self.state
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(linger))) {
            let idle = state.withLock { state -> TopicFeed? in
                guard let current = state.feeds[topic], current === feed, feed.viewerCount == 0 else { return nil }
                state.feeds[topic] = nil
                return feed
            }
            idle?.close()
        }
    }

    /// Removes a viewer; its topic's consumer closes after the linger time if nobody else watches.
    public func closeViewer(_ viewer: ViewerConnection) {
        viewer.close()
        detach(viewer, from: viewer.topic)
    }

    /// Every viewer on this relay.
    public var viewers: [ViewerConnection] { state.withLock { $0.feeds.values.flatMap(\.viewers) } }

    // MARK: - Operator commands

    /// Applies an operator's command if this relay holds its target; returns the acknowledgement
    /// to publish, or nil when the command is not for this relay.
    public func apply(_ command: ControlCommand) async -> CommandAck? {
        let relayID = settings.relayID
        func ack(_ ok: Bool, _ message: String) -> CommandAck {
            CommandAck(command: command.id, relay: relayID, ok: ok, message: message, atMilliseconds: currentMilliseconds())
        }
        if let target = command.relay, target != relayID { return nil }
        switch command.action {
        case .kick:
            guard let id = command.viewer else { return ack(false, "kick needs a viewer") }
            guard let viewer = viewers.first(where: { $0.id == id }) else {
                return command.relay == nil ? nil : ack(false, "no viewer \(id) on \(relayID)")
            }
            if !viewer.clientID.isEmpty {
                let until = currentMilliseconds() + settings.kickBanMilliseconds
                state.withLock { $0.bannedClients[viewer.clientID] = until }
            }
            viewer.close(.init(code: 4001, reason: "removed by the operator"))
            logger.notice("viewer kicked by the operator", metadata: ["viewer": "\(id)", "topic": "\(viewer.topic)", "by": "\(command.issuedBy)"])
            return ack(true, "kicked \(id) (\(viewer.topic))")
        case .pause, .resume:
            guard let name = command.topic, let topic = try? TopicName(name) else { return ack(false, "invalid topic") }
            let pause = command.action == .pause
            let feed = state.withLock { state -> TopicFeed? in
                if pause { state.pausedTopics.insert(topic) } else { state.pausedTopics.remove(topic) }
                return state.feeds[topic]
            }
            feed?.setPaused(pause)
            logger.notice("\(pause ? "paused" : "resumed") by the operator", metadata: ["topic": "\(topic)", "by": "\(command.issuedBy)"])
            return ack(true, "\(pause ? "paused" : "resumed") \(topic) (\(feed?.viewerCount ?? 0) viewers here)")
        case .switch:
            guard let toName = command.to, let target = try? TopicName(toName) else { return ack(false, "switch needs a valid target topic") }
            let movers: [ViewerConnection]
            if let id = command.viewer {
                movers = viewers.filter { $0.id == id }
                if movers.isEmpty { return command.relay == nil ? nil : ack(false, "no viewer \(id) on \(relayID)") }
            } else {
                guard let name = command.topic else { return ack(false, "switch needs a viewer or a topic") }
                movers = viewers.filter { $0.topic.value == name }
            }
            for viewer in movers {
                let from = viewer.topic
                detach(viewer, from: from)
                viewer.setTopic(target)
                viewer.restart()
                viewer.send(notice: ViewerNotice.switched(to: target))
                do { try await attach(viewer, to: target) } catch { viewer.close(.init(code: error.closeCode, reason: error.description)) }
            }
            return ack(true, "moved \(movers.count) viewer\(movers.count == 1 ? "" : "s") to \(target)")
        }
    }

    // MARK: - Status

    /// This relay's status document: sessions, per-topic throughput, consumer lag, latency.
    /// Starts a new measurement window.
    public func status(address: String) -> RelayStatus {
        let now = currentMilliseconds()
        let snapshot = metrics.snapshot(nowMilliseconds: now)
        let (publishers, feeds, paused, previousBytes, previousTime) = state.withLock { state in
            (Array(state.publishers.values), state.feeds, state.pausedTopics, state.bytesAtLastStatus, state.lastStatusMilliseconds)
        }
        let elapsed = Double(max(1, now - (previousTime == 0 ? startedAtMilliseconds : previousTime))) / 1000
        var bytesNow: [String: Int64] = [:]
        func bitrate(_ id: String, _ bytes: Int64) -> Int64 {
            bytesNow[id] = bytes
            return Int64(Double(max(0, bytes - (previousBytes[id] ?? 0))) * 8 / elapsed)
        }
        var sessions: [SessionStatus] = []
        for session in publishers {
            let id = "p-" + session.id.prefix(8)
            let bytes = Int64(session.counters.bytes)
            sessions.append(SessionStatus(id: id, role: .publisher, topic: session.topic.value, remoteAddress: session.remoteAddress,
                                          userAgent: session.userAgent, connectedAtMilliseconds: session.startedMilliseconds,
                                          bytes: bytes, bitrate: bitrate(id, bytes)))
        }
        var viewerDelays: [String: [Int64]] = [:]
        for feed in feeds.values {
            for viewer in feed.viewers {
                let report = viewer.pageReport
                let bytes = viewer.bytesWritten
                if let delay = report.liveDelayMilliseconds { viewerDelays[viewer.topic.value, default: []].append(delay) }
                sessions.append(SessionStatus(id: viewer.id, role: .viewer, topic: viewer.topic.value, remoteAddress: viewer.remoteAddress,
                                              userAgent: viewer.userAgent, connectedAtMilliseconds: viewer.connectedAtMilliseconds,
                                              bytes: bytes, bitrate: bitrate(viewer.id, bytes), skipped: Int64(viewer.skippedForSlowness),
                                              liveDelayMilliseconds: report.liveDelayMilliseconds,
                                              state: paused.contains(viewer.topic) ? "paused" : report.state))
            }
        }
        var names = Set(feeds.keys.map(\.value)).union(publishers.map(\.topic.value)).union(snapshot.keys)
        names.formUnion(paused.map(\.value))
        let topics = names.sorted().map { name -> TopicStatus in
            let measured = snapshot[name]
            let feed = feeds.first { $0.key.value == name }?.value
            let consumer = feed?.consumerStatus(nowMilliseconds: now)
            metrics.setGauges(topic: name, lag: consumer?.lag, viewers: feed?.viewerCount ?? 0)
            var latency = measured?.latency ?? []
            if let delays = viewerDelays[name]?.sorted(), !delays.isEmpty {
                func at(_ p: Double) -> Double { Double(delays[min(delays.count - 1, Int(Double(delays.count - 1) * p))]) }
                latency.append(LatencySummary(stage: .viewerDelay, count: delays.count, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1)))
            }
            return TopicStatus(
                name: name, paused: paused.contains { $0.value == name },
                publishers: publishers.filter { $0.topic.value == name }.count, viewers: feed?.viewerCount ?? 0,
                inFragmentsPerSecond: measured?.rates.inFragments ?? 0, inBytesPerSecond: measured?.rates.inBytes ?? 0,
                outFragmentsPerSecond: measured?.rates.outFragments ?? 0, outBytesPerSecond: measured?.rates.outBytes ?? 0,
                consumer: consumer, latency: latency
            )
        }
        state.withLock {
            $0.bytesAtLastStatus = bytesNow
            $0.lastStatusMilliseconds = now
        }
        return RelayStatus(relay: settings.relayID, address: address, startedAtMilliseconds: startedAtMilliseconds,
                           sentAtMilliseconds: now, sessions: sessions, topics: topics)
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

    /// Records a relay's status document (read from the status topic), for the topic list.
    public func recordPeerStatus(_ status: RelayStatus) {
        peers.withLock { $0[status.relay] = (status, currentMilliseconds()) }
    }

    /// Every stream topic in the cluster with what the fleet says of it: live when some relay
    /// reported a publisher on it within the last 3 seconds.
    public func topicSummaries() async -> [TopicSummary] {
        let admin = self.admin
        let listed = await runBlocking { () -> [KafkaTopicMetadata] in (try? admin.listTopics(timeoutMilliseconds: 3000)) ?? [] }
        let now = currentMilliseconds()
        let fresh = peers.withLock { peers in peers.values.filter { now - $0.receivedAt < 3000 }.map(\.status) }
        var summaries: [TopicSummary] = []
        for metadata in listed {
            guard let topic = try? TopicName(metadata.name) else { continue }
            let high = await runBlocking { (try? admin.queryWatermarks(topic: topic.value, timeoutMilliseconds: 1000).high) ?? 0 }
            let (local, viewers) = state.withLock { ($0.publishers[topic], $0.feeds[topic]?.viewerCount ?? 0) }
            let publishing = fresh.first { status in status.topics.contains { $0.name == topic.value && $0.publishers > 0 } }
            summaries.append(TopicSummary(
                name: topic.value, live: local != nil || publishing != nil,
                publisherRelay: local != nil ? settings.relayID : publishing?.relay, highWatermark: high, viewers: viewers
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
