import Kafka
import Testing

@Suite("Topic settings a relay creates topics with")
struct KafkaTopicSettingsTests {
    @Test func replicationFollowsTheClusterUpToThree() {
        let settings = KafkaTopicSettings()
        #expect([1, 2, 3, 5].map { settings.replicationFactor(brokers: $0) } == [1, 2, 3, 3])
        #expect(settings.replicationFactor(brokers: 0) == 1)
        #expect([1, 2, 3].map { settings.minInsyncReplicas(replicas: $0) } == [1, 1, 2])
        var fixed = settings
        fixed.replicationFactor = 2
        fixed.minInsyncReplicas = 2
        #expect(fixed.replicationFactor(brokers: 5) == 2 && fixed.minInsyncReplicas(replicas: 2) == 2)
    }

    @Test func theConfigsAreWhatKafkaCalls() {
        let configs = KafkaTopicSettings().configs(replicas: 3)
        #expect(configs == [
            "cleanup.policy": "delete", "min.insync.replicas": "2", "retention.ms": "86400000",
            "retention.bytes": "1073741824", "segment.bytes": "67108864", "max.message.bytes": "1048588",
        ])
    }

    @Test func controlTopicsKeepAnHourAtMost() {
        var settings = KafkaTopicSettings()
        #expect(settings.forControlTopics.retentionMilliseconds == 3_600_000)
        #expect(settings.forControlTopics.retentionBytes == 64 << 20)
        settings.retentionMilliseconds = 60_000
        #expect(settings.forControlTopics.retentionMilliseconds == 60_000)
        settings.retentionMilliseconds = -1  // streams kept forever; the control plane still an hour
        settings.retentionBytes = -1
        #expect(settings.forControlTopics.retentionMilliseconds == 3_600_000 && settings.forControlTopics.retentionBytes == 64 << 20)
    }

    @Test func anExistingTopicsDifferencesAreNamed() {
        var settings = KafkaTopicSettings()
        let existing = ["retention.ms": "604800000", "max.message.bytes": "1048588", "cleanup.policy": "delete", "unrelated": "x"]
        #expect(settings.differences(from: existing, replicas: 1) == [
            .init(name: "retention.ms", actual: "604800000", wanted: "86400000"),
        ])
        settings.replicationFactor = 3
        let found = settings.differences(from: ["max.message.bytes": "300000"], replicas: 1)
        #expect(found.map(\.name) == ["replication factor", "max.message.bytes"])
        #expect(found[1].description == "max.message.bytes is 300000 (kvb would set 1048588)")
        #expect(KafkaTopicSettings.maxMessageBytes(in: ["max.message.bytes": "300000"]) == 300_000)
        #expect(KafkaTopicSettings.maxMessageBytes(in: [:]) == nil)
    }
}
