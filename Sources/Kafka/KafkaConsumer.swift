import CRdKafka
import Foundation
import Logging

/// Where a consumer starts reading a partition.
public enum KafkaOffset: Sendable, Equatable {
    case beginning
    /// The high watermark: only records produced from now on.
    case end
    case offset(Int64)
    /// The first record at or after this time (ms since the Unix epoch). Brokers that do not
    /// implement the lookup (librdkafka's mock cluster) make this start at the end.
    case time(millisecondsSinceEpoch: Int64)
}

/// What one poll returned.
public enum KafkaConsumerEvent: Sendable, Equatable {
    case message(KafkaMessage)
    /// The consumer has read everything up to `offset` (the high watermark) on this partition.
    case endOfPartition(topic: String, partition: Int32, offset: Int64)
    /// `topic`: the topic it concerns, when it concerns one.
    case error(KafkaError, topic: String?)
}

/// A consumer with manual partition assignment (no consumer group): it reads exactly the
/// partitions it is given, from where it is told, so every relay sees every record.
///
/// ``poll(timeoutMilliseconds:)`` blocks: call it from a dedicated thread.
public final class KafkaConsumer: Sendable {
    let handle: KafkaHandle

    /// `onError` hears librdkafka's client-level errors (a broker unreachable, say), on
    /// librdkafka's thread; they are also logged.
    public init(configuration: KafkaConfiguration, logger: Logger, onError: @escaping @Sendable (KafkaError) -> Void = { _ in }) throws(KafkaError) {
        var properties = configuration.librdkafkaProperties(for: .consumer)
        // librdkafka wants a group id for its consumer API even when no group is ever joined.
        if properties["group.id"] == nil { properties["group.id"] = "kvb-unjoined" }
        handle = try KafkaHandle(type: RD_KAFKA_CONSUMER, properties: properties, callbacks: KafkaHandleCallbacks(logger: logger, onError: onError))
        rd_kafka_poll_set_consumer(handle.pointer)
    }

    /// Replaces the assignment with these partitions, each starting at its offset.
    public func assign(_ partitions: [(topic: String, partition: Int32, offset: KafkaOffset)]) throws(KafkaError) {
        let err = try withPartitionList(partitions) { handle, list in rd_kafka_assign(handle, list) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: "could not assign partitions") }
    }

    /// Convenience for one partition.
    public func assign(topic: String, partition: Int32 = 0, offset: KafkaOffset) throws(KafkaError) {
        try assign([(topic, partition, offset)])
    }

    /// Adds these partitions to the assignment, each starting at its offset; the others keep
    /// their positions. (One consumer can so read many topics that come and go.)
    public func incrementalAssign(_ partitions: [(topic: String, partition: Int32, offset: KafkaOffset)]) throws(KafkaError) {
        let error = try withPartitionList(partitions) { handle, list in rd_kafka_incremental_assign(handle, list) }
        try Self.check(error, context: "could not add partitions to the assignment")
    }

    /// Removes these partitions from the assignment; records of theirs not yet polled are dropped.
    public func incrementalUnassign(_ partitions: [(topic: String, partition: Int32)]) throws(KafkaError) {
        let error = try withPartitionList(partitions.map { ($0.topic, $0.partition, nil) }) { handle, list in rd_kafka_incremental_unassign(handle, list) }
        try Self.check(error, context: "could not remove partitions from the assignment")
    }

    /// Stops fetching these partitions (they stay assigned, at their positions).
    public func pause(_ partitions: [(topic: String, partition: Int32)]) throws(KafkaError) {
        try changeFetching(partitions, pause: true)
    }

    /// Fetches these partitions again, from where they were paused.
    public func resume(_ partitions: [(topic: String, partition: Int32)]) throws(KafkaError) {
        try changeFetching(partitions, pause: false)
    }

    private func changeFetching(_ partitions: [(topic: String, partition: Int32)], pause: Bool) throws(KafkaError) {
        let err = try withPartitionList(partitions.map { ($0.topic, $0.partition, nil) }) { handle, list in
            pause ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: pause ? "could not pause partitions" : "could not resume partitions") }
    }

    /// Runs `body` on the handle with a librdkafka partition list of `partitions` (each offset
    /// resolved, when given), freed afterwards.
    private func withPartitionList<T>(_ partitions: [(topic: String, partition: Int32, offset: KafkaOffset?)],
                                      _ body: (OpaquePointer, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> T) throws(KafkaError) -> T {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for entry in partitions {
            let element = rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition)
            if let offset = entry.offset {
                element?.pointee.offset = try resolve(offset, topic: entry.topic, partition: entry.partition)
            }
        }
        return try handle.use { body($0, list) }
    }

    private static func check(_ error: OpaquePointer?, context: String) throws(KafkaError) {
        guard let error else { return }
        defer { rd_kafka_error_destroy(error) }
        let detail = rd_kafka_error_string(error).map { String(cString: $0) } ?? ""
        throw KafkaError(code: Int32(rd_kafka_error_code(error).rawValue), "\(context): \(detail)")
    }

    private func resolve(_ offset: KafkaOffset, topic: String, partition: Int32) throws(KafkaError) -> Int64 {
        switch offset {
        case .beginning: return Int64(RD_KAFKA_OFFSET_BEGINNING)
        case .end: return Int64(RD_KAFKA_OFFSET_END)
        case .offset(let value): return value
        case .time(let ms):
            return try self.offset(atTime: ms, topic: topic, partition: partition, timeoutMilliseconds: 5000) ?? Int64(RD_KAFKA_OFFSET_END)
        }
    }

    /// Waits up to `timeoutMilliseconds` for the next event. Blocking.
    public func poll(timeoutMilliseconds: Int32) -> KafkaConsumerEvent? {
        // The message is read and freed while the handle is guaranteed alive.
        (try? handle.use { handle in
            guard let pointer = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else { return nil }
            return Self.event(from: pointer)
        }) ?? nil
    }

    private static func event(from pointer: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaConsumerEvent {
        defer { rd_kafka_message_destroy(pointer) }
        let message = pointer.pointee
        let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            return .endOfPartition(topic: topic, partition: message.partition, offset: message.offset)
        }
        guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let detail = message.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: message.len), as: UTF8.self) }
            var error = KafkaError(message.err, context: "consuming \(topic.isEmpty ? "" : "\(topic) ")failed")
            if let detail, !detail.isEmpty { error.message += " (\(detail))" }
            return .error(error, topic: topic.isEmpty ? nil : topic)
        }
        let value = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.len)) } ?? []
        let key = message.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.key_len)) }
        var headers: [KafkaHeader] = []
        var headerList: OpaquePointer?
        if rd_kafka_message_headers(pointer, &headerList) == RD_KAFKA_RESP_ERR_NO_ERROR, let headerList {
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(headerList, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let headerValue = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(name.map { String(cString: $0) } ?? "", headerValue))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        return .message(KafkaMessage(
            topic: topic, partition: message.partition, offset: message.offset, key: key, value: value,
            headers: headers, timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        ))
    }

    /// Asks the partition leader for the watermarks (blocking, up to `timeoutMilliseconds`).
    public func queryWatermarks(topic: String, partition: Int32 = 0, timeoutMilliseconds: Int32 = 5000) throws(KafkaError) -> KafkaWatermarks {
        try queryWatermarkOffsets(handle, topic: topic, partition: partition, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The offset of the first record at or after `milliseconds` (ms since the Unix epoch), by
    /// offsets-for-times; nil when the cluster names none (no such record, or, like the embedded
    /// cluster, it does not implement the lookup). Blocking.
    public func offset(atTime milliseconds: Int64, topic: String, partition: Int32 = 0, timeoutMilliseconds: Int32 = 3000) throws(KafkaError) -> Int64? {
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, partition)?.pointee.offset = milliseconds
        let err = try handle.use { rd_kafka_offsets_for_times($0, list, timeoutMilliseconds) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let element = list?.pointee.elems?.pointee else {
            throw KafkaError(err, context: "could not look up the offset for time \(milliseconds) in \(topic)")
        }
        guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(element.err, context: "could not look up the offset for time \(milliseconds) in \(topic)")
        }
        return element.offset >= 0 ? element.offset : nil
    }

    /// Where to start reading the last `milliseconds` of `topic` (e.g. the fleet's status
    /// documents): by offsets-for-times where the cluster answers it, otherwise `fallbackRecords`
    /// back from the end; never more than `maxRecords` back. From the beginning when the topic
    /// does not exist yet. Blocking; says in the log which way it went.
    public func recentStart(of topic: String, milliseconds: Int64, fallbackRecords: Int64 = 50, maxRecords: Int64 = 5_000,
                            logger: Logger) -> KafkaOffset {
        guard let marks = try? queryWatermarks(topic: topic, timeoutMilliseconds: 3000) else { return .beginning }
        let since = Int64((Date().timeIntervalSince1970 * 1000).rounded()) - milliseconds
        let found = try? offset(atTime: since, topic: topic)
        let start = marks.recentStart(timeOffset: found, fallbackRecords: fallbackRecords, maxRecords: maxRecords)
        if let found {
            logger.info("reading \(topic) from offset \(start) (offsets-for-times: \(found), \(milliseconds) ms back; end \(marks.high))")
        } else {
            logger.info("reading \(topic) from offset \(start) (\(fallbackRecords) records back: the cluster named no offset for \(milliseconds) ms back; end \(marks.high))")
        }
        return .offset(start)
    }

    /// The watermarks last seen in fetch responses, without a network round trip.
    public func cachedWatermarks(topic: String, partition: Int32 = 0) -> KafkaWatermarks? {
        var low: Int64 = -1
        var high: Int64 = -1
        let err = try? handle.use { rd_kafka_get_watermark_offsets($0, topic, partition, &low, &high) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return KafkaWatermarks(low: max(low, 0), high: high)
    }

    /// The offset of the next record this consumer will return for the partition, if known.
    public func position(topic: String, partition: Int32 = 0) -> Int64? {
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, partition)
        guard (try? handle.use { rd_kafka_position($0, list) }) == RD_KAFKA_RESP_ERR_NO_ERROR,
              let offset = list?.pointee.elems?.pointee.offset, offset >= 0
        else { return nil }
        return offset
    }

    /// Leaves the assignment and destroys the handle. Idempotent.
    public func close() {
        handle.destroy { rd_kafka_consumer_close($0) }
    }
}

func queryWatermarkOffsets(_ handle: KafkaHandle, topic: String, partition: Int32, timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaWatermarks {
    var low: Int64 = -1
    var high: Int64 = -1
    let err = try handle.use { rd_kafka_query_watermark_offsets($0, topic, partition, &low, &high, timeoutMilliseconds) }
    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
        throw KafkaError(err, context: "could not read the watermarks of \(topic)[\(partition)]")
    }
    return KafkaWatermarks(low: low, high: high)
}
