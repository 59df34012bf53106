import CRdKafka
import Logging

/// A topic as the cluster's metadata describes it.
public struct KafkaTopicMetadata: Sendable, Equatable {
    public var name: String
    public var partitionCount: Int
    /// Replicas of partition 0 (the one kvb uses).
    public var replicas: Int

    public init(name: String, partitionCount: Int, replicas: Int = 1) {
        self.name = name
        self.partitionCount = partitionCount
        self.replicas = replicas
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

    /// Asks a broker for the cluster's metadata (brokers only); returns the brokers' ids; throws
    /// when none answers in time.
    @discardableResult
    public func ping(timeoutMilliseconds: Int32 = 2000) throws(KafkaError) -> [Int32] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try handle.use { rd_kafka_metadata($0, 0, nil, &metadata, timeoutMilliseconds) }
        defer { if let metadata { rd_kafka_metadata_destroy(metadata) } }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(err, context: "no Kafka broker answered") }
        let count = Int(metadata.pointee.broker_cnt)
        guard count > 0, let brokers = metadata.pointee.brokers else { return [] }
        return (0..<count).map { brokers[$0].id }
    }

    /// The cluster's controller (the broker that takes CreateTopics), as the latest metadata
    /// named it, if it is one of `brokers`; nil otherwise (librdkafka's mock cluster names a
    /// broker 0 it does not have, and never answers CreateTopics). Call after
    /// ``ping(timeoutMilliseconds:)``, which fetches that metadata and gives `brokers`.
    public func controllerID(among brokers: [Int32]) -> Int32? {
        guard let id = try? handle.use({ rd_kafka_controllerid($0, 0) }), brokers.contains(id) else { return nil }
        return id
    }

    /// Whether CreateTopics made the topic, or found it there already.
    public enum Creation: Sendable, Equatable {
        case created
        case alreadyExists
    }

    /// Creates `name` with `configs` (topic-level settings such as `retention.ms`); a
    /// `replicationFactor` of -1 leaves it to the cluster. Succeeds if the topic already exists
    /// (leaving it as it is).
    @discardableResult
    public func createTopic(
        _ name: String, partitions: Int32 = 1, replicationFactor: Int32 = -1, configs: [String: String] = [:],
        timeoutMilliseconds: Int32 = 10_000
    ) throws(KafkaError) -> Creation {
        var errorBuffer = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorBuffer, errorBuffer.count) else {
            throw KafkaError("cannot create topic \(name): \(String(errorBuffer: errorBuffer))")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        for (key, value) in configs.sorted(by: { $0.key < $1.key }) {
            let err = rd_kafka_NewTopic_set_config(newTopic, key, value)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: "cannot set \(key)=\(value) on topic \(name)") }
        }
        return try adminRequest(RD_KAFKA_ADMIN_OP_CREATETOPICS, what: "creating topic \(name)", timeoutMilliseconds: timeoutMilliseconds) { pointer, options, queue in
            var topics: [OpaquePointer?] = [newTopic]
            rd_kafka_CreateTopics(pointer, &topics, 1, options, queue)
        } result: { (event) throws(KafkaError) -> Creation in
            var count = 0
            guard let result = rd_kafka_event_CreateTopics_result(event),
                  let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0
            else { return .created }
            let err = rd_kafka_topic_result_error(results[0])
            if err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { return .alreadyExists }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let detail = rd_kafka_topic_result_error_string(results[0]).map { String(cString: $0) } ?? ""
                throw KafkaError(err, context: "creating topic \(name) failed\(detail.isEmpty ? "" : " (\(detail))")")
            }
            return .created
        }
    }

    /// A topic's configs as the cluster reports them (DescribeConfigs), by name; entries
    /// without a value (sensitive ones) are left out.
    public func topicConfigs(_ name: String, timeoutMilliseconds: Int32 = 5000) throws(KafkaError) -> [String: String] {
        guard let resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name) else {
            throw KafkaError("cannot describe topic \(name)")
        }
        defer { rd_kafka_ConfigResource_destroy(resource) }
        return try adminRequest(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, what: "reading topic \(name)'s settings", timeoutMilliseconds: timeoutMilliseconds) { pointer, options, queue in
            var resources: [OpaquePointer?] = [resource]
            rd_kafka_DescribeConfigs(pointer, &resources, 1, options, queue)
        } result: { (event) throws(KafkaError) -> [String: String] in
            var count = 0
            guard let result = rd_kafka_event_DescribeConfigs_result(event),
                  let resources = rd_kafka_DescribeConfigs_result_resources(result, &count), count > 0,
                  let described = resources[0]
            else { return [:] }
            let err = rd_kafka_ConfigResource_error(described)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: "reading topic \(name)'s settings failed") }
            var entryCount = 0
            guard let entries = rd_kafka_ConfigResource_configs(described, &entryCount) else { return [:] }
            var configs: [String: String] = [:]
            for index in 0..<entryCount {
                guard let entry = entries[index], let key = rd_kafka_ConfigEntry_name(entry),
                      let value = rd_kafka_ConfigEntry_value(entry) else { continue }
                configs[String(cString: key)] = String(cString: value)
            }
            return configs
        }
    }

    /// Runs one admin request and waits for its result event, in short slices so closing the
    /// client does not wait out the whole timeout.
    private func adminRequest<T>(
        _ operation: rd_kafka_admin_op_t, what: String, timeoutMilliseconds: Int32,
        send: (OpaquePointer, OpaquePointer?, OpaquePointer) -> Void,
        result: (OpaquePointer) throws(KafkaError) -> T
    ) throws(KafkaError) -> T {
        try handle.use { (pointer) throws(KafkaError) -> T in
            var errorBuffer = [CChar](repeating: 0, count: 512)
            guard let queue = rd_kafka_queue_new(pointer) else { throw KafkaError("cannot create an admin queue") }
            defer { rd_kafka_queue_destroy(queue) }
            let options = rd_kafka_AdminOptions_new(pointer, operation)
            defer { rd_kafka_AdminOptions_destroy(options) }
            rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorBuffer, errorBuffer.count)
            send(pointer, options, queue)
            var waited: Int32 = 0
            var polled: OpaquePointer?
            while polled == nil, waited < timeoutMilliseconds + 1000, !handle.isClosing {
                polled = rd_kafka_queue_poll(queue, 100)
                waited += 100
            }
            guard let event = polled else {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, "\(what) timed out")
            }
            defer { rd_kafka_event_destroy(event) }
            let eventError = rd_kafka_event_error(event)
            guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(eventError, context: "\(what) failed") }
            return try result(event)
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
            let first = topic.partition_cnt > 0 ? topic.partitions?.pointee : nil
            return KafkaTopicMetadata(name: String(cString: name), partitionCount: Int(topic.partition_cnt),
                                      replicas: Int(first?.replica_cnt ?? 0))
        }
    }

    /// Asks the partition leader for the watermarks.
    public func queryWatermarks(topic: String, partition: Int32 = 0, timeoutMilliseconds: Int32 = 5000) throws(KafkaError) -> KafkaWatermarks {
        try queryWatermarkOffsets(handle, topic: topic, partition: partition, timeoutMilliseconds: timeoutMilliseconds)
    }

    public func close() { handle.destroy() }
}
