import ArgumentParser
import Kafka

/// What a relay asks of the topics it creates, as command-line options; defaults come from
/// ``KafkaTopicSettings`` (README, "Kafka clusters"). Topics that exist are left as they are.
struct TopicOptions: ParsableArguments {
    private static let defaults = KafkaTopicSettings()

    @Option(help: "Replicas of each topic kvb creates (default: the cluster's brokers, up to 3).")
    var topicReplicationFactor: Int?

    @Option(help: "min.insync.replicas of each topic kvb creates (default: 2 with 3 or more replicas, else 1).")
    var topicMinInsyncReplicas: Int?

    @Option(help: "retention.ms: how long Kafka keeps a stream, milliseconds (1 hour at most for the control topics).")
    var topicRetentionMs = defaults.retentionMilliseconds

    @Option(help: "retention.bytes: the most Kafka keeps of one stream, bytes (64 MiB at most for the control topics).")
    var topicRetentionBytes = defaults.retentionBytes

    @Option(help: "segment.bytes: the steps in which retention deletes, bytes.")
    var topicSegmentBytes = defaults.segmentBytes

    @Option(help: "max.message.bytes: the largest record; larger fragments are cut into several records.")
    var topicMaxMessageBytes = defaults.maxMessageBytes

    func validate() throws {
        if let replicas = topicReplicationFactor, replicas < 1 { throw ValidationError("--topic-replication-factor must be 1 or more") }
        if let minimum = topicMinInsyncReplicas, minimum < 1 { throw ValidationError("--topic-min-insync-replicas must be 1 or more") }
        if let replicas = topicReplicationFactor, let minimum = topicMinInsyncReplicas, minimum > replicas {
            throw ValidationError("--topic-min-insync-replicas (\(minimum)) cannot exceed --topic-replication-factor (\(replicas)): no write would ever succeed")
        }
        guard topicMaxMessageBytes >= 16 << 10 else { throw ValidationError("--topic-max-message-bytes must be at least 16384") }
        guard topicRetentionMs > 0 || topicRetentionMs == -1 else { throw ValidationError("--topic-retention-ms must be positive (or -1: forever)") }
        guard topicRetentionBytes > 0 || topicRetentionBytes == -1 else { throw ValidationError("--topic-retention-bytes must be positive (or -1: no limit)") }
        guard topicSegmentBytes >= 1 << 20 else { throw ValidationError("--topic-segment-bytes must be at least 1 MiB") }
    }

    var settings: KafkaTopicSettings {
        var settings = KafkaTopicSettings()
        settings.replicationFactor = topicReplicationFactor
        settings.minInsyncReplicas = topicMinInsyncReplicas
        settings.retentionMilliseconds = topicRetentionMs
        settings.retentionBytes = topicRetentionBytes
        settings.segmentBytes = topicSegmentBytes
        settings.maxMessageBytes = topicMaxMessageBytes
        return settings
    }
}
