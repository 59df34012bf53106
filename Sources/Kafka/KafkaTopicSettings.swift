/// What kvb asks of a topic it creates, with the defaults a relay uses (`kvb-server --help`
/// names the options; README "Kafka clusters" explains them).
///
/// Applied through CreateTopics when a relay creates a stream's topic (or a control-plane topic);
/// a topic that already exists is left as it is, and ``differences(from:)`` says how it differs.
public struct KafkaTopicSettings: Sendable, Equatable {
    /// Replicas of each partition; nil (the default): as many as the cluster has brokers, up to 3.
    public var replicationFactor: Int?
    /// `min.insync.replicas`; nil (the default): 2 when a partition has 3 or more replicas, else 1.
    public var minInsyncReplicas: Int?
    /// `retention.ms`: how long Kafka keeps a stream (-1: forever). Default 24 hours.
    public var retentionMilliseconds: Int64 = 86_400_000
    /// `retention.bytes`: the most Kafka keeps of one stream (per partition; -1: no limit).
    /// Default 1 GiB.
    public var retentionBytes: Int64 = 1 << 30
    /// `segment.bytes`: retention deletes whole segments, so this is its granularity. Default 64 MiB.
    public var segmentBytes: Int64 = 64 << 20
    /// `max.message.bytes`: the largest record the topic accepts. Default 1,048,588, Kafka's own
    /// default; a relay splits a larger fragment into several records.
    public var maxMessageBytes: Int = 1_048_588

    public init() {}

    /// The settings for the control plane's topics (`kvb.control`, `kvb.status`): the same
    /// replication, but an hour and 64 MiB of history at most.
    public var forControlTopics: KafkaTopicSettings {
        var settings = self
        settings.retentionMilliseconds = retentionMilliseconds > 0 ? min(retentionMilliseconds, 3_600_000) : 3_600_000
        settings.retentionBytes = retentionBytes > 0 ? min(retentionBytes, 64 << 20) : 64 << 20
        settings.segmentBytes = min(segmentBytes, 16 << 20)
        return settings
    }

    /// The replication factor to create a topic with on a cluster of `brokers` brokers.
    public func replicationFactor(brokers: Int) -> Int {
        replicationFactor ?? max(1, min(3, brokers))
    }

    /// `min.insync.replicas` for a topic with `replicas` replicas.
    public func minInsyncReplicas(replicas: Int) -> Int {
        minInsyncReplicas ?? (replicas >= 3 ? 2 : 1)
    }

    /// The topic configs to create a topic with `replicas` replicas.
    public func configs(replicas: Int) -> [String: String] {
        [
            "cleanup.policy": "delete",
            "min.insync.replicas": String(minInsyncReplicas(replicas: replicas)),
            "retention.ms": String(retentionMilliseconds),
            "retention.bytes": String(retentionBytes),
            "segment.bytes": String(segmentBytes),
            "max.message.bytes": String(maxMessageBytes),
        ]
    }

    /// One setting in which an existing topic differs from what kvb would create.
    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        public var name: String
        public var actual: String
        public var wanted: String

        public init(name: String, actual: String, wanted: String) {
            self.name = name
            self.actual = actual
            self.wanted = wanted
        }

        public var description: String { "\(name) is \(actual) (kvb would set \(wanted))" }
    }

    /// How an existing topic (its configs as DescribeConfigs returned them, and its replica
    /// count) differs from these settings. Configs the cluster did not report are not compared.
    public func differences(from configs: [String: String], replicas: Int) -> [Difference] {
        var found: [Difference] = []
        if let wanted = replicationFactor, wanted != replicas {
            found.append(Difference(name: "replication factor", actual: String(replicas), wanted: String(wanted)))
        }
        for (name, wanted) in self.configs(replicas: replicas).sorted(by: { $0.key < $1.key }) {
            guard let actual = configs[name], actual != wanted else { continue }
            found.append(Difference(name: name, actual: actual, wanted: wanted))
        }
        return found
    }

    /// The largest record an existing topic accepts: its `max.message.bytes`, or nil when the
    /// cluster did not say.
    public static func maxMessageBytes(in configs: [String: String]) -> Int? {
        configs["max.message.bytes"].flatMap(Int.init)
    }
}
