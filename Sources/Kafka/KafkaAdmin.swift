import CRdKafka
import Logging

/// A topic as the cluster's metadata describes it.
public struct KafkaTopicMetadata: Sendable, Equatable {
    public var name: String
    public var partitionCount: Int

    public init(name: String, partitionCount: Int) {
        self.name = name
        self.partitionCount = partitionCount
    }
}

/// Cluster administration: topic creation, topic listing, watermarks, a reachability probe. All
/// calls block up to their timeout; call them from a thread that may block.
///
/// Its handle is a consumer that never joins a group, so its metadata lookups never ask the
/// cluster to auto-create the topics they name (a producer's would): looking at a topic must not
/// create it.
public final class KafkaAdmin: Sendable {
    let handle: KafkaHandle

    public init(configuration: KafkaConfiguration, logger: Logger) throws(KafkaError) {
        var properties = configuration.librdkafkaProperties(for: .admin)
        if properties["group.id"] == nil { properties["group.id"] = "kvb-unjoined" }
        handle = try KafkaHandle(type: RD_KAFKA_CONSUMER, properties: properties, callbacks: KafkaHandleCallbacks(logger: logger))
    }

    /// Asks a broker for the cluster's metadata (brokers only); throws when none answers in time.
    public func ping(timeoutMilliseconds: Int32 = 2000) throws(KafkaError) {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try handle.use { rd_kafka_metadata($0, 0, nil, &metadata, timeoutMilliseconds) }
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: "no Kafka broker answered") }
    }

    /// Creates `name`; succeeds if it already exists.
    public func createTopic(_ name: String, partitions: Int32 = 1, replicationFactor: Int32 = -1, timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) {
        try handle.use { (pointer) throws(KafkaError) in
            var errorBuffer = [CChar](repeating: 0, count: 512)
            guard let newTopic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorBuffer, errorBuffer.count) else {
                throw KafkaError("cannot create topic \(name): \(String(errorBuffer: errorBuffer))")
            }
            defer { rd_kafka_NewTopic_destroy(newTopic) }
            guard let queue = rd_kafka_queue_new(pointer) else { throw KafkaError("cannot create an admin queue") }
            defer { rd_kafka_queue_destroy(queue) }
            let options = rd_kafka_AdminOptions_new(pointer, RD_KAFKA_ADMIN_OP_CREATETOPICS)
            defer { rd_kafka_AdminOptions_destroy(options) }
            rd_kafka_AdminOptions_set_request_timeout(options, Int32(timeoutMilliseconds), &errorBuffer, errorBuffer.count)
            var topics: [OpaquePointer?] = [newTopic]
            rd_kafka_CreateTopics(pointer, &topics, 1, options, queue)
            // Wait in short slices so closing the client does not wait out the whole timeout.
            var waited: Int32 = 0
            var polled: OpaquePointer?
            while polled == nil, waited < timeoutMilliseconds + 1000, !handle.isClosing {
                polled = rd_kafka_queue_poll(queue, 100)
                waited += 100
            }
            guard let event = polled else {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, "creating topic \(name) timed out")
            }
            defer { rd_kafka_event_destroy(event) }
            let eventError = rd_kafka_event_error(event)
            guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(eventError, context: "creating topic \(name) failed") }
            var count = 0
            guard let result = rd_kafka_event_CreateTopics_result(event),
                  let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0
            else { return }
            let err = rd_kafka_topic_result_error(results[0])
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else {
                throw KafkaError(err, context: "creating topic \(name) failed")
            }
        }
    }

    /// Every topic in the cluster, internal ones (`__...`) included.
    public func listTopics(timeoutMilliseconds: Int32 = 5000) throws(KafkaError) -> [KafkaTopicMetadata] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try handle.use { rd_kafka_metadata($0, 1, nil, &metadata, timeoutMilliseconds) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(err, context: "could not read the cluster's topics") }
        defer { rd_kafka_metadata_destroy(metadata) }
        let count = Int(metadata.pointee.topic_cnt)
        guard count > 0, let topics = metadata.pointee.topics else { return [] }
        return (0..<count).compactMap { index in
            let topic = topics[index]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = topic.topic else { return nil }
            return KafkaTopicMetadata(name: String(cString: name), partitionCount: Int(topic.partition_cnt))
        }
    }

    /// Asks the partition leader for the watermarks.
    public func queryWatermarks(topic: String, partition: Int32 = 0, timeoutMilliseconds: Int32 = 5000) throws(KafkaError) -> KafkaWatermarks {
        try queryWatermarkOffsets(handle, topic: topic, partition: partition, timeoutMilliseconds: timeoutMilliseconds)
    }

    public func close() { handle.destroy() }
}
