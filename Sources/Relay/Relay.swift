import ControlPlane
import Foundation
import Kafka
import Logging

/// The relay core: publishers in, Kafka in the middle, viewers out. One producer and one consumer
/// (``TopicReader``) for the whole relay, one ``TopicFeed`` per watched topic, and a bounded queue
/// per viewer.
///
/// The HTTP/WebSocket layer calls this; it knows nothing about sockets.
public final class Relay: Sendable {
    public let settings: RelaySettings
    public let kafka: KafkaConfiguration
    let logger: Logger
    let producer: KafkaProducer
    /// Throughput and latency per topic.
    public let metrics: TopicMetrics
    public let startedAtMilliseconds: Int64
    let admin: KafkaAdmin
    /// Creates and checks the topics this relay writes to.
    let provisioner: TopicProvisioner
    let sessions: Locked<[UInt32: PublishSession]>
    let state = Locked(State())
    let probe: Locked<KafkaConsumer?> = Locked(nil)
    /// The latest status document of every relay (this one included), with when it arrived.
    let peers = Locked<[String: (status: RelayStatus, receivedAt: Int64)]>([:])
    let lastKafkaError: Locked<(message: String, milliseconds: Int64)?>
    /// Whether Kafka answers, probed every couple of seconds.
    let health: KafkaHealthMonitor
    /// Which topics hold kvb streams (and which hold other applications' records).
    let directory = Locked(TopicDirectory())
    /// Which topics exist, without naming them to Kafka (which could create them).
    let clusterTopics: ClusterTopics
    /// The one consumer that reads every watched topic.
    let reader: TopicReader
    /// What Kafka still holds of each topic: sessions and downloads.
    let archive: TopicArchive
    /// The sessions every stream topic holds, for `GET /api/recordings`.
    let catalog: RecordingCatalog
    /// Drains and times out viewers' sockets.
    let sweeper = ViewerSweeper()

    struct State: Sendable {
        var publishers: [TopicName: PublishSession] = [:]
        var feeds: [TopicName: TopicFeed] = [:]
        /// The topic each viewer is counted on, by viewer number; and the counts.
        var attachments: [UInt64: TopicName] = [:]
        /// Viewers watching from an earlier time, by viewer number, with the task that reads for each.
        var replays: [UInt64: (viewer: ViewerConnection, task: Task<Void, Never>)] = [:]
        var viewerCounts: [TopicName: Int] = [:]
        var totalViewers = 0
        /// Topics this relay has asked the cluster to create (bounded; creating twice is harmless).
        var createdTopics: Set<TopicName> = []
        /// The largest record each topic accepts, where the cluster said (its max.message.bytes).
        var recordLimits: [TopicName: Int] = [:]
        var pausedTopics: Set<TopicName> = []
        /// Kicked viewers' client ids and addresses, until when they are refused.
        var bannedClients: [String: Int64] = [:]
        var bannedAddresses: [String: Int64] = [:]
        /// Bytes per session at the previous status, for bitrates.
        var bytesAtLastStatus: [String: Int64] = [:]
        var lastStatusMilliseconds: Int64 = 0
        /// The page of viewers the next status document lists.
        var nextViewerPage = 0
        var nextSessionNumber: UInt32 = 1
        var nextViewerNumber: UInt64 = 1
        var shuttingDown = false
    }

    /// A peer's status document counts as current for this long after it arrived.
    static let peerFreshMilliseconds: Int64 = 3_000

    /// The peers' status documents that are current.
    static func freshStatuses(_ peers: Locked<[String: (status: RelayStatus, receivedAt: Int64)]>, nowMilliseconds now: Int64) -> [RelayStatus] {
        peers.withLock { peers in peers.values.filter { now - $0.receivedAt < peerFreshMilliseconds }.map(\.status) }
    }

    /// Topics remembered as created; past this the memory starts over (re-creating is harmless).
    static let maxRememberedCreatedTopics = 10_000

    /// - Parameter createTopic: how to create a topic with a number of replicas; defaults to
    ///   Kafka's CreateTopics with ``RelaySettings/topics``. The in-process embedded cluster passes
    ///   its own (the mock does not answer CreateTopics).
    public init(
        settings: RelaySettings,
        kafka: KafkaConfiguration,
        logger: Logger,
        createTopic: (@Sendable (_ topic: TopicName, _ replicas: Int) throws -> Void)? = nil
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
        let admin = try KafkaAdmin(configuration: kafka, logger: logger)
        self.admin = admin
        self.clusterTopics = ClusterTopics(admin: admin)
        let health = KafkaHealthMonitor(admin: admin, logger: logger)
        self.health = health
        // Batches must fit the topics' record limit too (librdkafka builds them up to this size).
        var producerKafka = kafka
        if producerKafka.properties["message.max.bytes"] == nil {
            producerKafka.properties["message.max.bytes"] = String(settings.topics.maxMessageBytes)
        }
        self.producer = try KafkaProducer(configuration: producerKafka, logger: logger, onError: { error in
            lastKafkaError.withLock { $0 = (error.message, currentMilliseconds()) }
            health.noteError(error)
        }) { report in
            let session = sessions.withLock { $0[UInt32(truncatingIfNeeded: report.id >> 32)] }
            let ingest = session?.delivered(sequence: UInt32(truncatingIfNeeded: report.id), error: report.error?.message)
            if let ingest, report.error == nil {
                metrics.recordLatency(topic: report.topic, stage: .acknowledged, milliseconds: currentMilliseconds() - ingest)
            }
        }
        // Topics with a publisher here or on a peer that reported in the last 3 s.
        let state = self.state
        let peers = self.peers
        self.reader = try TopicReader(kafka: kafka, throttleMilliseconds: settings.consumerThrottleMilliseconds, logger: logger, onError: { error in
            lastKafkaError.withLock { $0 = (error.message, currentMilliseconds()) }
        }) {
            let now = currentMilliseconds()
            let local = state.withLock { Set($0.publishers.keys.map(\.value)) }
            let remote = Relay.freshStatuses(peers, nowMilliseconds: now).flatMap { $0.topics.filter { $0.publishers > 0 }.map(\.name) }
            return local.union(remote)
        }
        self.provisioner = TopicProvisioner(admin: admin, settings: settings.topics, logger: logger, create: createTopic)
        let archive = TopicArchive(kafka: kafka, maxReaders: settings.limits.recordingReaders, logger: logger)
        self.archive = archive
        let clusterTopics = self.clusterTopics
        let access = settings.access
        // Only the topics this relay serves (`--topic-pattern`): it reads and lists no others.
        self.catalog = RecordingCatalog(archive: archive) {
            await runBlocking {
                clusterTopics.names().map { names in
                    RecordingCatalog.streamTopics(names).filter { topic in (try? access.allows(topic: topic)) != nil }
                }
            }
        }
        health.start()
        reader.start()
        sweeper.start(stallMilliseconds: Int64(settings.limits.stalledViewerSeconds) * 1000) {
            state.withLock { $0.feeds.values.flatMap(\.viewers) + $0.replays.values.map(\.viewer) }
        }
    }

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
        let health = self.health
        let logger = self.logger
        let reader = self.reader
        let sweeper = self.sweeper
        await runBlocking {
            health.stop()
            sweeper.stop()
            for feed in feeds { feed.close() }
            reader.close()
            if !producer.flush(timeoutMilliseconds: timeoutMilliseconds) {
                logger.warning("\(producer.outstanding) fragments were not delivered before shutdown")
            }
            producer.close()
            admin.close()
            probe.withLock { $0?.close() }
        }
    }
}

/// 8 random hex digits: viewer ids are unique across the fleet (and commands name the relay too).
func randomSessionSuffix() -> String {
    String(format: "%08x", UInt32.random(in: .min ... .max))
}
