import ControlPlane
import Foundation
import Kafka
import Logging

/// Viewers: one feed per watched topic, created with the first viewer, closed after the last.
extension Relay {
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
    func attach(_ viewer: ViewerConnection, to topic: TopicName) async throws(RelayError) {
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
    func detach(_ viewer: ViewerConnection, from topic: TopicName) {
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
}
