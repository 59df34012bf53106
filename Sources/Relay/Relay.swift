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
    let logger: Logger
    let producer: KafkaProducer
    /// Throughput and latency per topic.
    public let metrics: TopicMetrics
    public let startedAtMilliseconds: Int64
    let admin: KafkaAdmin
    let createTopic: @Sendable (TopicName) throws -> Void
    let sessions: Locked<[UInt32: PublishSession]>
    let state = Locked(State())
    let probe: Locked<KafkaConsumer?> = Locked(nil)
    /// The latest status document of every relay (this one included), with when it arrived.
    let peers = Locked<[String: (status: RelayStatus, receivedAt: Int64)]>([:])
    let lastKafkaError: Locked<(message: String, milliseconds: Int64)?>

    struct State: Sendable {
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

    let rejected: @Sendable (String) -> Void

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
