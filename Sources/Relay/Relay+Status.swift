import ControlPlane
import Foundation
import Kafka
import Logging
import Metrics

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
        var viewerSessions: [SessionStatus] = []
        for feed in feeds.values {
            for viewer in feed.viewers {
                let report = viewer.pageReport
                let bytes = viewer.bytesWritten
                if let delay = report.liveDelayMilliseconds { viewerDelays[viewer.topic.value, default: []].append(delay) }
                viewerSessions.append(SessionStatus(id: viewer.id, role: .viewer, topic: viewer.topic.value, remoteAddress: viewer.remoteAddress,
                                              userAgent: viewer.userAgent, connectedAtMilliseconds: viewer.connectedAtMilliseconds,
                                              bytes: bytes, bitrate: bitrate(viewer.id, bytes), skipped: Int64(viewer.skippedForSlowness),
                                              liveDelayMilliseconds: report.liveDelayMilliseconds,
                                              state: paused.contains(viewer.topic) ? "paused" : report.state,
                                              glassMilliseconds: report.glassMilliseconds))
            }
        }
        // Viewers of the past: listed (and kickable) like the others, their state says so; their
        // delay is chosen, not suffered, so it stays out of the topic's figures.
        for viewer in replayViewers {
            let bytes = viewer.bytesWritten
            viewerSessions.append(SessionStatus(id: viewer.id, role: .viewer, topic: viewer.topic.value, remoteAddress: viewer.remoteAddress,
                                                userAgent: viewer.userAgent, connectedAtMilliseconds: viewer.connectedAtMilliseconds,
                                                bytes: bytes, bitrate: bitrate(viewer.id, bytes), skipped: Int64(viewer.skippedForSlowness),
                                                liveDelayMilliseconds: viewer.pageReport.liveDelayMilliseconds, state: "replay"))
        }
        // Past a page of viewers, each document lists the next page (by id, so pages hold still).
        var viewerPage: ViewerPage?
        let perPage = max(1, settings.statusViewersPerPage)
        if viewerSessions.count > perPage {
            let pages = (viewerSessions.count + perPage - 1) / perPage
            let index = state.withLock { state -> Int in
                defer { state.nextViewerPage = (state.nextViewerPage + 1) % pages }
                return state.nextViewerPage % pages
            }
            viewerSessions.sort { $0.id < $1.id }
            sessions += viewerSessions[(index * perPage)..<min(viewerSessions.count, (index + 1) * perPage)]
            viewerPage = ViewerPage(index: index, count: pages, viewers: viewerSessions.count)
        } else {
            sessions += viewerSessions
        }
        var names = Set(feeds.keys.map(\.value)).union(publishers.map(\.topic.value)).union(snapshot.keys)
        names.formUnion(paused.map(\.value))
        let topics = names.sorted().map { name -> TopicStatus in
            let measured = snapshot[name]
            let feed = feeds.first { $0.key.value == name }?.value
            let consumer = feed?.consumerStatus(nowMilliseconds: now)
            metrics.setGauges(topic: name, lag: consumer?.lag, viewers: feed?.viewerCount ?? 0, nowMilliseconds: now)
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
        Gauge(label: "kvb_watched_topics").record(reader.watchedTopicCount)
        Gauge(label: "kvb_idle_topics_not_fetched").record(reader.pausedTopics.count)
        var status = RelayStatus(relay: settings.relayID, address: address, startedAtMilliseconds: startedAtMilliseconds,
                                 sentAtMilliseconds: now, sessions: sessions, topics: topics, kafkaProblem: kafkaProblem)
        status.viewerPage = viewerPage
        status.kafkaError = recentKafkaError(withinMilliseconds: Self.statusKafkaErrorMilliseconds)
        return status
    }

    // MARK: - Topics

    /// What the newest records of `topic` are (any relay's), read from Kafka. Blocking work runs
    /// off the cooperative pool. A topic that is not empty but whose records cannot be read counts
    /// as foreign: kvb writes only into topics it can tell are its own.
    func topicContents(_ topic: TopicName) async -> TopicContents {
        let admin = self.admin
        let kafka = self.kafka
        let logger = self.logger
        let probe = self.probe
        let clusterTopics = self.clusterTopics
        let contents = await runBlocking { () -> TopicContents in
            // Never name a topic that does not exist: the lookup could create it.
            switch clusterTopics.exists(topic.value) {
            case false?: return .empty
            case nil: return .unreachable("the cluster's topics could not be listed")
            case true?: break
            }
            let marks: KafkaWatermarks
            do {
                marks = try admin.queryWatermarks(topic: topic.value, timeoutMilliseconds: 2000)
            } catch let error as KafkaError where error.isUnknownTopic {
                return .empty
            } catch {
                return .unreachable("\(error)")
            }
            guard marks.high > marks.low else { return .empty }
            return probe.withLock { probe -> TopicContents in
                if probe == nil { probe = try? KafkaConsumer(configuration: kafka, logger: logger) }
                guard let consumer = probe else { return .foreign }
                // A few records back: the very last offset may be a transaction marker.
                guard (try? consumer.assign(topic: topic.value, offset: .offset(max(marks.low, marks.high - 5)))) != nil else { return .foreign }
                var last: KafkaMessage?
                let deadline = Date().addingTimeInterval(2)
                reading: while Date() < deadline {
                    switch consumer.poll(timeoutMilliseconds: 100) {
                    case .message(let message)?:
                        last = message
                        if message.offset >= marks.high - 1 { break reading }
                    case .endOfPartition?:
                        if last != nil { break reading }
                    case .error?, nil:
                        continue
                    }
                }
                // Not fetched any more once probed.
                try? consumer.assign([])
                guard let last else { return .foreign }
                return StreamFragment(last).map(TopicContents.kvb) ?? .foreign
            }
        }
        let verdict: TopicDirectory.Verdict? = switch contents {
        case .kvb: .kvb
        case .foreign: .foreign
        case .empty, .unreachable: nil
        }
        if let verdict { directory.withLock { $0.record(verdict, for: topic.value, nowMilliseconds: currentMilliseconds()) } }
        return contents
    }

    /// Records a relay's status document (read from the status topic), for the topic list.
    /// Relays silent for a minute are forgotten.
    public func recordPeerStatus(_ status: RelayStatus) {
        let now = currentMilliseconds()
        peers.withLock { peers in
            if peers[status.relay] == nil, peers.count >= Self.maxPeers { peers = peers.filter { now - $0.value.receivedAt < 60_000 } }
            guard peers[status.relay] != nil || peers.count < Self.maxPeers else { return }
            peers[status.relay] = (status, now)
        }
    }

    /// Relays remembered at once (their status documents).
    static let maxPeers = 1_000
    /// Unknown topics probed per listing, and the time they may take; the rest wait for the next one.
    static let probesPerListing = 10
    static let probeBudgetMilliseconds: Int64 = 1_500

    /// The topics that carry kvb streams and that this relay serves, with what the fleet says of
    /// them: live when some relay reported a publisher on it within the last 3 seconds. Topics of other applications are not
    /// listed; each cluster topic is probed once (its newest records) and the verdict remembered.
    public func topicSummaries() async -> [TopicSummary] {
        let admin = self.admin
        let clusterTopics = self.clusterTopics
        let listed = await runBlocking { clusterTopics.names() ?? [] }
        let now = currentMilliseconds()
        let fresh = Self.freshStatuses(peers, nowMilliseconds: now)
        var names = Set(listed.compactMap { try? TopicName($0) })
        directory.withLock { $0.retain(only: Set(names.map(\.value))) }
        // Topics with a stream here or on a fresh peer are kvb's whatever the probe says.
        let local = state.withLock { Set($0.publishers.keys).union($0.feeds.keys) }
        let reported = Set(fresh.flatMap { $0.topics.filter { $0.publishers > 0 }.compactMap { try? TopicName($0.name) } })
        // Only topics that exist: a viewer may wait on one that has no stream yet.
        names.formUnion(local.union(reported).filter { listed.contains($0.value) })
        // Only topics this relay serves (`--topic-pattern`): a link to any other would be refused.
        let access = settings.access
        names = names.filter { (try? access.allows(topic: $0)) != nil }
        var kvbTopics: [TopicName] = []
        var probes = 0
        for topic in names.sorted() {
            if local.contains(topic) || reported.contains(topic) {
                kvbTopics.append(topic)
                continue
            }
            switch directory.withLock({ $0.verdict(for: topic.value, nowMilliseconds: now) }) {
            case .kvb?: kvbTopics.append(topic)
            case .foreign?: continue
            case nil:
                guard probes < Self.probesPerListing, currentMilliseconds() - now < Self.probeBudgetMilliseconds else { continue }
                probes += 1
                if case .kvb = await topicContents(topic) { kvbTopics.append(topic) }
            }
        }
        var summaries: [TopicSummary] = []
        for topic in kvbTopics {
            let high = await runBlocking { (try? admin.queryWatermarks(topic: topic.value, timeoutMilliseconds: 1000).high) ?? 0 }
            let (local, viewers) = state.withLock { ($0.publishers[topic], $0.viewerCounts[topic] ?? 0) }
            let publishing = fresh.first { status in status.topics.contains { $0.name == topic.value && $0.publishers > 0 } }
            let elsewhere = fresh.filter { $0.relay != settings.relayID }
                .flatMap { $0.topics.filter { $0.name == topic.value } }
                .reduce(0) { $0.saturatingAdd(max(0, $1.viewers)) }
            summaries.append(TopicSummary(
                name: topic.value, live: local != nil || publishing != nil,
                publisherRelay: local != nil ? settings.relayID : publishing?.relay, highWatermark: high, viewers: viewers,
                viewersInFleet: viewers.saturatingAdd(elsewhere)
            ))
        }
        return summaries
    }

    /// Why Kafka is unreachable right now, nil while it answers.
    public var kafkaProblem: String? { health.current?.reason }

    /// The producer's latest Kafka error, if it happened within the last `withinMilliseconds`.
    /// How long a Kafka error stays in the status document after it happened.
    static let statusKafkaErrorMilliseconds: Int64 = 10_000

    public func recentKafkaError(withinMilliseconds: Int64 = 30_000) -> String? {
        lastKafkaError.withLock { last in
            guard let last, currentMilliseconds() - last.milliseconds < withinMilliseconds else { return nil }
            return last.message
        }
    }

    /// Live publisher sessions on this relay.
    public var publishers: [PublishSession] { state.withLock { Array($0.publishers.values) } }

    /// Viewers on this relay.
    public var viewerCount: Int { state.withLock { $0.totalViewers } }
}
