import ControlPlane
import Foundation
import Kafka
import Logging

/// Viewers: one feed per watched topic, created with the first viewer, closed after the last;
/// every feed reads through the relay's one consumer.
extension Relay {
    // MARK: - Watching

    /// Adds a viewer of `topic`; frames arrive through ``ViewerConnection/next()``. Refuses a topic
    /// this relay does not serve, a missing or bad watch token (when tokens are on), a kicked
    /// client or address during its ban, and viewers past the relay's, the topic's or the feeds'
    /// limits.
    public func openViewer(topic: TopicName, token: String? = nil, remoteAddress: String, remoteHost: String = "",
                           userAgent: String = "", clientID: String = "", transport: any ViewerTransport) async throws(RelayError) -> ViewerConnection {
        let now = currentMilliseconds()
        let tokenExpiry = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: now / 1000)
        let viewer = try openViewerLocked(topic: topic, now: now, remoteAddress: remoteAddress, remoteHost: remoteHost,
                                          userAgent: userAgent, clientID: clientID, tokenExpiry: tokenExpiry, transport: transport)
        viewer.send(notice: ViewerNotice.hello(topic: topic, relay: settings.relayID))
        try await attach(viewer, to: topic)
        return viewer
    }

    /// The checks made under the relay's lock (bans, the relay's viewer limit) and the new viewer.
    func openViewerLocked(topic: TopicName, now: Int64, remoteAddress: String, remoteHost: String, userAgent: String,
                          clientID: String, tokenExpiry: Int64?, watchesThePast: Bool = false,
                          transport: any ViewerTransport) throws(RelayError) -> ViewerConnection {
        let limits = settings.limits
        return try state.withLock { (state) throws(RelayError) -> ViewerConnection in
            guard !state.shuttingDown else { throw .shuttingDown }
            state.bannedClients = state.bannedClients.filter { $0.value > now }
            state.bannedAddresses = state.bannedAddresses.filter { $0.value > now }
            let ban = [clientID.isEmpty ? nil : state.bannedClients[clientID], remoteHost.isEmpty ? nil : state.bannedAddresses[remoteHost]]
                .compactMap { $0 }.max()
            if let until = ban { throw .banned(secondsLeft: Int((until - now + 999) / 1000)) }
            guard state.totalViewers < limits.viewersPerRelay else {
                throw .limit(.viewersPerRelay, "this relay already serves \(limits.viewersPerRelay) viewers (its limit); try another relay")
            }
            defer { state.nextViewerNumber &+= 1 }
            return ViewerConnection(number: state.nextViewerNumber, id: "v-" + randomSessionSuffix(), topic: topic,
                                    remoteAddress: remoteAddress, remoteHost: remoteHost, userAgent: userAgent, clientID: clientID,
                                    connectedAtMilliseconds: now, watchTokenExpiresAt: tokenExpiry, maxQueuedBytes: settings.viewerQueueBytes,
                                    watchesThePast: watchesThePast, transport: transport)
        }
    }

    /// Registers `viewer` with the feed of `topic`, starting the feed if it is the first viewer.
    /// Throws when the topic's viewer limit or the relay's feed limit is reached (a feed nobody
    /// watches any more, still lingering, makes room).
    func attach(_ viewer: ViewerConnection, to topic: TopicName) async throws(RelayError) {
        let limits = settings.limits
        let feedsFull = RelayError.limit(.feedsPerRelay, "this relay already watches \(limits.feedsPerRelay) topics (its limit); try another relay")
        // Reserve the viewer's place; join an existing feed at once. (A new feed past the limit
        // is refused here too.)
        let joined = try state.withLock { (state) throws(RelayError) -> Bool in
            guard state.viewerCounts[topic, default: 0] < limits.viewersPerTopic else {
                throw .limit(.viewersPerTopic, "topic \(topic) already has \(limits.viewersPerTopic) viewers on this relay (its limit); try another relay")
            }
            if state.feeds[topic] == nil, state.feeds.count >= limits.feedsPerRelay,
               !state.feeds.values.contains(where: { $0.viewerCount == 0 }) {
                throw feedsFull
            }
            state.reserve(viewer, on: topic)
            guard let feed = state.feeds[topic] else { return false }
            feed.add(viewer)
            return true
        }
        if joined { return }
        let paused = state.withLock { $0.pausedTopics.contains(topic) }
        let newFeed = TopicFeed(topic: topic, reader: reader, settings: settings, metrics: metrics, health: health,
                                clusterTopics: clusterTopics, paused: paused, logger: logger)
        // Two viewers may race to create the feed: the first one registered wins. At the feed
        // limit, an idle feed (lingering after its last viewer) is closed to make room.
        let outcome = try state.withLock { (state) throws(RelayError) -> (winner: TopicFeed, evicted: TopicFeed?) in
            if let existing = state.feeds[topic] {
                existing.add(viewer)
                return (existing, nil)
            }
            var evicted: TopicFeed?
            if state.feeds.count >= limits.feedsPerRelay {
                guard let idle = state.feeds.first(where: { $0.value.viewerCount == 0 }) else {
                    state.release(viewer)
                    throw feedsFull
                }
                state.feeds[idle.key] = nil
                evicted = idle.value
            }
            state.feeds[topic] = newFeed
            newFeed.add(viewer)
            return (newFeed, evicted)
        }
        if outcome.winner === newFeed {
            newFeed.start()
        } else {
            await runBlocking { newFeed.close() }
        }
        if let evicted = outcome.evicted { await runBlocking { evicted.close() } }
    }

    /// Takes `viewer` off its feed (if it is on one); the feed closes after the linger time if idle.
    func detach(_ viewer: ViewerConnection) {
        let left = state.withLock { state -> (TopicFeed, TopicName)? in
            guard let topic = state.release(viewer), let feed = state.feeds[topic] else { return nil }
            return (feed, topic)
        }
        guard let (feed, topic) = left, feed.remove(viewer) == 0 else { return }
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

    /// A viewer's page reported its live delay and state, and the glass-to-glass delays it
    /// measured (milliseconds, oldest first): kept for the status document, and the glass
    /// samples go into the topic's `glass` latency stage.
    public func viewerReported(_ viewer: ViewerConnection, liveDelayMilliseconds: Int64?, state: String?, glassMilliseconds: [Int64]) {
        viewer.report(liveDelayMilliseconds: liveDelayMilliseconds, state: state, glassMilliseconds: glassMilliseconds)
        // A viewer watching the past is behind on purpose: its figures are not the stream's.
        guard !glassMilliseconds.isEmpty, !viewer.watchesThePast else { return }
        let topic = viewer.topic.value
        for sample in glassMilliseconds { metrics.recordLatency(topic: topic, stage: .glass, milliseconds: sample) }
    }

    /// Removes a viewer; its topic's consumer closes after the linger time if nobody else watches.
    public func closeViewer(_ viewer: ViewerConnection) {
        viewer.close()
        if let replay = state.withLock({ $0.replays.removeValue(forKey: viewer.number) }) {
            replay.task.cancel()
            return
        }
        detach(viewer)
    }

    /// Every viewer on this relay.
    public var viewers: [ViewerConnection] { state.withLock { $0.feeds.values.flatMap(\.viewers) } }
}

extension Relay.State {
    /// Counts `viewer` as watching `topic`.
    mutating func reserve(_ viewer: ViewerConnection, on topic: TopicName) {
        attachments[viewer.number] = topic
        viewerCounts[topic, default: 0] += 1
        totalViewers += 1
    }

    /// Stops counting `viewer`; returns the topic it was counted on (nil if it was not).
    @discardableResult
    mutating func release(_ viewer: ViewerConnection) -> TopicName? {
        guard let topic = attachments.removeValue(forKey: viewer.number) else { return nil }
        let remaining = viewerCounts[topic, default: 1] - 1
        viewerCounts[topic] = remaining > 0 ? remaining : nil
        totalViewers -= 1
        return topic
    }
}
