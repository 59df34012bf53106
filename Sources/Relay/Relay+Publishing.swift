import ControlPlane
import Foundation
import Kafka
import Logging

/// Publishers: accepting one per topic, segmenting their chunks, producing the fragments.
extension Relay {
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

    func refuse(_ error: RelayError) -> RelayError {
        rejected(error.label)
        return error
    }
}
