import ControlPlane
import Foundation
import Kafka
import Logging
import NIOCore
import Metrics

/// Publishers: accepting one per topic, segmenting their chunks, producing the fragments.
extension Relay {
    // MARK: - Publishing

    /// Accepts a publisher for `topic` presenting `key`, or refuses it: a missing or wrong key, a
    /// topic this relay does not serve, a topic holding another application's records, a topic
    /// that already has a publisher here or (judging by its newest record) on another relay, or
    /// a relay at its publisher limit.
    ///
    /// Nothing is created in Kafka yet: the topic is made when the first valid WebM arrives.
    public func openPublisher(topic: TopicName, key: String? = nil, remoteAddress: String, userAgent: String = "") async throws(RelayError) -> PublishSession {
        if state.withLock({ $0.shuttingDown }) { throw .shuttingDown }
        try settings.access.checkPublish(topic: topic, key: key)
        // A publisher that reconnects may arrive a moment before its old socket's handler has
        // finished: give the old session up to a second to go.
        var waited = 0
        while state.withLock({ $0.publishers[topic] != nil }) {
            guard waited < 1000 else { throw .topicBusy(topic.value) }
            try? await Task.sleep(for: .milliseconds(20))
            waited += 20
        }
        switch await topicContents(topic) {
        case .foreign:
            throw .forbidden(.foreignTopic, "topic \(topic) holds records that are not kvb streams (another application's topic); pick another topic")
        case .kvb(let latest):
            // Another relay's publisher is live if the newest record is recent and not an end
            // marker. Records of this relay's own sessions don't count: none is open here now.
            if !latest.isEnd, latest.relay != settings.relayID, currentMilliseconds() - latest.ingestMilliseconds < 3000 {
                throw .topicBusy("\(topic.value) (published through relay \(latest.relay))")
            }
        case .unreachable(let why):
            throw .kafkaUnavailable(why)
        case .empty:
            break
        }
        let limits = settings.limits
        let session = try state.withLock { (state) throws(RelayError) -> PublishSession in
            guard state.publishers[topic] == nil else { throw .topicBusy(topic.value) }
            // Only publishers that sent a valid stream count: a silent socket (closed by the
            // handshake timeout) cannot take the slots of real ones.
            guard state.publishers.values.count(where: \.isStreaming) < limits.publishersPerRelay else {
                throw .limit(.publishersPerRelay, "this relay already has \(limits.publishersPerRelay) publishers (its limit); try another relay")
            }
            let session = PublishSession(number: state.nextSessionNumber, topic: topic, remoteAddress: remoteAddress, userAgent: userAgent,
                                         relayID: settings.relayID, limits: limits)
            state.nextSessionNumber &+= 1
            state.publishers[topic] = session
            return session
        }
        sessions.withLock { $0[session.number] = session }
        // Viewers here of an idle topic get the new stream at once.
        reader.wake(topic.value)
        logger.info("publisher connected", metadata: ["topic": "\(topic)", "session": "\(session.id)", "remote": "\(remoteAddress)"])
        return session
    }

    /// Segments a chunk from the publisher and produces the fragments it completed.
    public func publish(_ chunk: some Collection<UInt8>, session: PublishSession) async throws(RelayError) {
        // The topic's own limit, where it is known and smaller than the relay's.
        let limit = min(state.withLock { $0.recordLimits[session.topic] } ?? .max, settings.topics.maxMessageBytes)
        let received = try session.receive(chunk, nowMilliseconds: currentMilliseconds(), maxRecordBytes: limit)
        if received.startedStream { await prepareTopic(session.topic) }
        for fragment in received.fragments {
            try await produce(fragment, session: session)
            metrics.recordIn(topic: session.topic.value, bytes: fragment.payload.readableBytes)
        }
    }

    /// The stream is valid WebM: create its topic (1 partition, the relay's topic settings) or
    /// check the one that exists, before its first fragment is produced: a producer's first look
    /// at a topic makes a broker with auto-creation create it with the broker's defaults. A round
    /// trip or two; bounded by the admin timeouts when Kafka does not answer.
    private func prepareTopic(_ topic: TopicName) async {
        let isNew = state.withLock { state -> Bool in
            if state.createdTopics.count >= Self.maxRememberedCreatedTopics {
                state.createdTopics.removeAll()
                state.recordLimits.removeAll()
            }
            return state.createdTopics.insert(topic).inserted
        }
        directory.withLock { $0.record(.kvb, for: topic.value, nowMilliseconds: currentMilliseconds()) }
        guard isNew else { return }
        let provisioner = self.provisioner
        let logger = self.logger
        let producer = self.producer
        let clusterTopics = self.clusterTopics
        let state = self.state
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                do {
                    let outcome = try provisioner.provision(topic)
                    if let limit = outcome.maxMessageBytes {
                        state.withLock { $0.recordLimits[topic] = limit }
                    }
                } catch {
                    // The next publisher of the topic tries again.
                    state.withLock { _ = $0.createdTopics.remove(topic) }
                    logger.notice("topic \(topic) not created (\(error)); relying on the cluster's auto-creation")
                }
                producer.prepare(topic: topic.value)
                clusterTopics.invalidate()
                done.resume()
            }
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
            } catch where error.isQueueFull {
                // librdkafka's queue is full: Kafka is slow or away. Wait a little; then drop the
                // fragment (viewers restart at the next keyframe) and keep the publisher.
                guard waited < 1000 else {
                    session.dropped(sequence: UInt32(truncatingIfNeeded: fragment.sequence), reason: "Kafka queue full (\(error.message)): fragment dropped")
                    Counter(label: "kvb_fragments_dropped_total", dimensions: [("reason", "producer_queue_full")]).increment()
                    return
                }
                waited += 10
                try? await Task.sleep(for: .milliseconds(10))
            } catch where error.isMessageTooLarge {
                // Fragments are cut to the topic's limit; this is a producer limit set lower still.
                throw .limit(.elementSize, "a fragment of \(fragment.payload.readableBytes) bytes is larger than Kafka accepts here (\(error.message)); check the relay's message.max.bytes")
            } catch {
                throw .kafkaUnavailable(error.message)
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
        session.finish()
        // Keep the session a moment for late delivery reports, then forget it.
        let sessions = self.sessions
        let number = session.number
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { _ = sessions.withLock { $0.removeValue(forKey: number) } }
        logger.info("publisher disconnected", metadata: ["topic": "\(session.topic)", "session": "\(session.id)"])
    }

    /// Creates one of the control plane's topics (1 partition), as stream topics are created,
    /// with a shorter retention.
    func createControlTopic(_ name: String) throws {
        guard let topic = try? TopicName(name, allowingControlTopics: true) else { return }
        _ = try provisioner.provision(topic, control: true)
    }
}
