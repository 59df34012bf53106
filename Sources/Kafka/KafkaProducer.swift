import CRdKafka
import Logging

/// Produces records with delivery reports (acks=all, idempotent, no linger by default).
///
/// ``send(_:id:)`` never blocks: it queues the record in librdkafka, and the outcome arrives
/// later through the `onDelivery` closure, on the producer's own poll thread.
public final class KafkaProducer: Sendable {
    let handle: KafkaHandle
    private let pollThread: KafkaPollThread

    public init(
        configuration: KafkaConfiguration,
        logger: Logger,
        onError: @escaping @Sendable (KafkaError) -> Void = { _ in },
        onDelivery: @escaping @Sendable (KafkaDeliveryReport) -> Void
    ) throws(KafkaError) {
        let handle = try KafkaHandle(
            type: RD_KAFKA_PRODUCER,
            properties: configuration.librdkafkaProperties(for: .producer),
            callbacks: KafkaHandleCallbacks(logger: logger, onError: onError, onDelivery: onDelivery)
        )
        self.handle = handle
        self.pollThread = KafkaPollThread(name: "kvb-producer-poll") {
            _ = try? handle.use { rd_kafka_poll($0, 100) }
        }
    }

    /// Queues `message`; `id` comes back in its delivery report. Throws when librdkafka refuses it
    /// at once (queue full: retry after a moment; unknown partition; message too large).
    public func send(_ message: KafkaOutgoingMessage, id: UInt64) throws(KafkaError) {
        let headers: OpaquePointer? = message.headers.isEmpty ? nil : rd_kafka_headers_new(message.headers.count)
        if let headers {
            for header in message.headers {
                if let value = header.value {
                    value.withUnsafeBytes { _ = rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let opaque = UnsafeMutableRawPointer(bitPattern: UInt(id &+ 1))
        let err: rd_kafka_resp_err_t
        do {
            err = try handle.use { pointer in
                message.key.withUnsafeBytes { key in
                    message.value.withUnsafeBytes { value in
                        kvb_produce(pointer, message.topic, message.partition,
                                    key.baseAddress, key.count, value.baseAddress, value.count, headers, opaque)
                    }
                }
            }
        } catch {
            if let headers { rd_kafka_headers_destroy(headers) }
            throw error
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if let headers { rd_kafka_headers_destroy(headers) }
            throw KafkaError(err, context: "could not produce to \(message.topic)")
        }
    }

    /// Fetches `topic`'s metadata now (blocking, up to the timeout), so the first record sent to
    /// it does not wait for the lookup. Returns whether the cluster answered.
    @discardableResult
    public func prepare(topic: String, timeoutMilliseconds: Int32 = 2000) -> Bool {
        (try? handle.use { pointer -> Bool in
            guard let topicHandle = rd_kafka_topic_new(pointer, topic, nil) else { return false }
            defer { rd_kafka_topic_destroy(topicHandle) }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(pointer, 0, topicHandle, &metadata, timeoutMilliseconds)
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            return err == RD_KAFKA_RESP_ERR_NO_ERROR
        }) ?? false
    }

    /// Records queued or in flight, not yet reported.
    public var outstanding: Int { (try? handle.use { Int(rd_kafka_outq_len($0)) }) ?? 0 }

    /// Waits up to `timeoutMilliseconds` for every queued record to be delivered (blocking).
    /// Returns whether everything was delivered.
    @discardableResult
    public func flush(timeoutMilliseconds: Int32) -> Bool {
        (try? handle.use { rd_kafka_flush($0, timeoutMilliseconds) == RD_KAFKA_RESP_ERR_NO_ERROR }) ?? false
    }

    /// Stops the poll thread and destroys the handle. Call ``flush(timeoutMilliseconds:)`` first.
    public func close() {
        pollThread.stop()
        handle.destroy()
    }
}
