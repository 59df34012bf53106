import ControlPlane
import Foundation
import Kafka
import Logging

/// What the relay reports: its status document, the fleet's topics, recent Kafka errors.
extension Relay {
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
}
