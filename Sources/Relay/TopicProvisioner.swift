import Kafka
import Logging
import Metrics

/// Creates the topics a relay writes to with its ``KafkaTopicSettings`` (replication,
/// `min.insync.replicas`, retention, `max.message.bytes`), and checks the ones that already exist:
/// how they differ is logged and counted, and their record size limit is learned so that fragments
/// are cut to fit it. Blocking: call it off the event loops.
final class TopicProvisioner: Sendable {
    /// How to create a topic with `replicas` replicas, when not through CreateTopics (the
    /// in-process embedded cluster, which does not answer it).
    typealias Create = @Sendable (_ topic: TopicName, _ replicas: Int) throws -> Void

    /// What provisioning found out about a topic.
    struct Outcome: Sendable, Equatable {
        /// The largest record the topic accepts, when known.
        var maxMessageBytes: Int?
        /// How an existing topic differs from the relay's settings.
        var differences: [KafkaTopicSettings.Difference] = []
    }

    private let admin: KafkaAdmin
    let settings: KafkaTopicSettings
    private let create: Create?
    private let logger: Logger

    init(admin: KafkaAdmin, settings: KafkaTopicSettings, logger: Logger, create: Create? = nil) {
        self.admin = admin
        self.settings = settings
        self.create = create
        self.logger = logger
    }

    /// Creates `topic` (a stream's, or with `control` one of the control plane's) or checks it.
    /// Throws when Kafka does not answer, or refuses to create it.
    func provision(_ topic: TopicName, control: Bool = false) throws -> Outcome {
        let settings = control ? self.settings.forControlTopics : self.settings
        if let create {
            let brokers = (try? admin.ping(timeoutMilliseconds: 2000))?.count ?? 1
            try create(topic, settings.replicationFactor(brokers: brokers))
            return Outcome(maxMessageBytes: nil)
        }
        let brokers = try admin.ping(timeoutMilliseconds: 2000)
        let replicas = settings.replicationFactor(brokers: brokers.count)
        // Without a controller nobody answers CreateTopics (librdkafka's mock cluster in another
        // process): the topic is created on first use instead, with the cluster's defaults.
        guard admin.controllerID(among: brokers) != nil else {
            logger.debug("the cluster names no controller: topic \(topic) is left to its auto-creation")
            return Outcome(maxMessageBytes: nil)
        }
        let creation = try admin.createTopic(
            topic.value, partitions: 1, replicationFactor: Int32(replicas), configs: settings.configs(replicas: replicas),
            timeoutMilliseconds: 3000
        )
        if creation == .created {
            logger.info("created topic \(topic): \(replicas) replica(s), \(settings.configs(replicas: replicas).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
            return Outcome(maxMessageBytes: settings.maxMessageBytes)
        }
        return check(topic, settings: settings)
    }

    /// Reads an existing topic's settings and reports how they differ from the relay's.
    private func check(_ topic: TopicName, settings: KafkaTopicSettings) -> Outcome {
        let configs: [String: String]
        do {
            configs = try admin.topicConfigs(topic.value, timeoutMilliseconds: 2000)
        } catch {
            logger.debug("could not read topic \(topic)'s settings: \(error)")
            return Outcome(maxMessageBytes: nil)
        }
        let replicas = (try? admin.listTopics(timeoutMilliseconds: 2000))?.first { $0.name == topic.value }?.replicas
        let outcome = Outcome(
            maxMessageBytes: KafkaTopicSettings.maxMessageBytes(in: configs),
            differences: settings.differences(from: configs, replicas: replicas ?? settings.replicationFactor(brokers: 1))
                .filter { replicas != nil || $0.name != "replication factor" }
        )
        if !outcome.differences.isEmpty {
            Counter(label: "kvb_topics_with_other_settings_total").increment()
            logger.warning("topic \(topic) exists with other settings than this relay's; kvb leaves them as they are: \(outcome.differences.map(\.description).joined(separator: "; "))")
        }
        return outcome
    }
}
