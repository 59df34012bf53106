import CRdKafka
import Logging

/// An in-process Kafka cluster (librdkafka's mock cluster) that other processes reach over TCP
/// on loopback. Used when no `BOOTSTRAP_SERVERS` is configured, and by `kvb-server broker`.
///
/// It keeps only the newest ~5 MiB per partition, and never answers CreateTopics: create topics
/// through ``createTopic(_:partitions:replicationFactor:)`` instead.
public final class EmbeddedKafkaCluster: Sendable {
    private let owner: KafkaHandle
    private let cluster: Locked<MockCluster?>
    /// `HOST:PORT` list to give clients as `bootstrap.servers`.
    public let bootstrapServers: String
    /// What the cluster keeps of each partition: the newest this many bytes (librdkafka's mock).
    public static let retainedBytesPerPartition: Int64 = 5 << 20

    public init(brokers: Int32 = 1, logger: Logger) throws(KafkaError) {
        // The mock cluster needs a handle to own it; a producer with no brokers of its own.
        owner = try KafkaHandle(type: RD_KAFKA_PRODUCER, properties: ["log.connection.close": "false", "log_level": "3"], callbacks: KafkaHandleCallbacks(logger: logger))
        guard let mock = rd_kafka_mock_cluster_new(owner.pointer, brokers) else {
            throw KafkaError("could not start the embedded Kafka cluster")
        }
        cluster = Locked(MockCluster(pointer: mock))
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(mock))
    }

    /// Creates a topic (instantly; the mock does not go through CreateTopics).
    public func createTopic(_ name: String, partitions: Int32 = 1, replicationFactor: Int32 = 1) throws(KafkaError) {
        let err = cluster.withLock { mock -> rd_kafka_resp_err_t in
            guard let mock = mock?.pointer else { return RD_KAFKA_RESP_ERR__DESTROY }
            return rd_kafka_mock_topic_create(mock, name, partitions, replicationFactor)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else {
            throw KafkaError(err, context: "could not create topic \(name) on the embedded cluster")
        }
    }

    /// Takes a broker down (its connections close) or brings it back: for fault tests.
    public func setBroker(_ id: Int32, up: Bool) {
        cluster.withLock { mock in
            guard let mock = mock?.pointer else { return }
            _ = up ? rd_kafka_mock_broker_set_up(mock, id) : rd_kafka_mock_broker_set_down(mock, id)
        }
    }

    /// Makes broker `id` the leader of a topic's partition (as a cluster's controller does when a
    /// leader fails or is reassigned): for failover tests. The topic must exist.
    public func setLeader(topic: String, partition: Int32 = 0, broker id: Int32) throws(KafkaError) {
        let err = cluster.withLock { mock -> rd_kafka_resp_err_t in
            guard let mock = mock?.pointer else { return RD_KAFKA_RESP_ERR__DESTROY }
            return rd_kafka_mock_partition_set_leader(mock, topic, partition, id)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, context: "could not move the leader of \(topic) [\(partition)] to broker \(id)")
        }
    }

    /// Adds `milliseconds` of round-trip time to a broker's responses: for fault tests.
    public func setBroker(_ id: Int32, roundTripMilliseconds: Int32) {
        cluster.withLock { mock in
            guard let mock = mock?.pointer else { return }
            _ = rd_kafka_mock_broker_set_rtt(mock, id, max(0, roundTripMilliseconds))
        }
    }

    /// Stops the cluster. Idempotent.
    public func close() {
        let mock = cluster.withLock { value -> MockCluster? in
            defer { value = nil }
            return value
        }
        if let mock { rd_kafka_mock_cluster_destroy(mock.pointer) }
        owner.destroy()
    }

    deinit { close() }
}

/// The mock cluster pointer; librdkafka's mock API is safe to call from any thread.
private struct MockCluster: @unchecked Sendable {
    let pointer: OpaquePointer
}
