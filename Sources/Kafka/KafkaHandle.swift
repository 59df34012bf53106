import CRdKafka
import Foundation
import Logging

/// Owns one librdkafka handle (`rd_kafka_t`) and the callbacks bound to it.
///
/// librdkafka handles are thread-safe, so this wrapper is shared freely; it is destroyed once,
/// by ``destroy()`` or when the last reference goes.
final class KafkaHandle: @unchecked Sendable {
    /// The raw handle. Use it only through ``use(_:)`` (or during setup, before sharing).
    let pointer: OpaquePointer
    let callbacks: Unmanaged<KafkaHandleCallbacks>
    /// Calls currently inside librdkafka, and whether the handle is being destroyed.
    private let usage = Locked((inFlight: 0, closing: false, destroyed: false))

    /// Creates a handle of `type` from string properties.
    init(type: rd_kafka_type_t, properties: [String: String], callbacks: KafkaHandleCallbacks) throws(KafkaError) {
        let conf = rd_kafka_conf_new()
        var errorBuffer = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errorBuffer, errorBuffer.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError("invalid Kafka property \(key)=\(key.contains("password") ? "***" : value): \(String(errorBuffer: errorBuffer))")
            }
        }
        let retained = Unmanaged.passRetained(callbacks)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_log_cb(conf, kvbLogCallback)
        rd_kafka_conf_set_error_cb(conf, kvbErrorCallback)
        if type == RD_KAFKA_PRODUCER {
            rd_kafka_conf_set_dr_msg_cb(conf, kvbDeliveryCallback)
        }
        guard let handle = rd_kafka_new(type, conf, &errorBuffer, errorBuffer.count) else {
            // rd_kafka_new frees conf only on success.
            rd_kafka_conf_destroy(conf)
            retained.release()
            throw KafkaError("could not create a Kafka client: \(String(errorBuffer: errorBuffer))")
        }
        self.pointer = handle
        self.callbacks = retained
    }

    /// Runs `body` with the handle, which is guaranteed to stay alive until `body` returns.
    /// Throws once ``destroy(beforeDestroy:)`` has begun: a call never touches a freed handle.
    func use<T>(_ body: (OpaquePointer) throws(KafkaError) -> T) throws(KafkaError) -> T {
        let admitted = usage.withLock { usage -> Bool in
            guard !usage.closing else { return false }
            usage.inFlight += 1
            return true
        }
        guard admitted else { throw KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, "the Kafka client is closed") }
        defer { usage.withLock { $0.inFlight -= 1 } }
        return try body(pointer)
    }

    /// True once ``destroy(beforeDestroy:)`` has begun: long calls should return early.
    var isClosing: Bool { usage.withLock { $0.closing } }

    /// Destroys the handle once the calls inside it have returned (they are bounded by their
    /// timeouts), after running `beforeDestroy` (e.g. a consumer close). Blocking; idempotent.
    func destroy(beforeDestroy: (OpaquePointer) -> Void = { _ in }) {
        let first = usage.withLock { usage -> Bool in
            defer { usage.closing = true }
            return !usage.closing
        }
        guard first else { return }
        while usage.withLock({ $0.inFlight }) > 0 { usleep(2_000) }
        beforeDestroy(pointer)
        rd_kafka_destroy(pointer)
        usage.withLock { $0.destroyed = true }
        callbacks.release()
    }

    deinit { destroy() }
}

/// What librdkafka calls back into: logs, errors and delivery reports for one handle.
final class KafkaHandleCallbacks: Sendable {
    let logger: Logger
    let onError: @Sendable (KafkaError) -> Void
    let onDelivery: @Sendable (KafkaDeliveryReport) -> Void

    init(
        logger: Logger,
        onError: @escaping @Sendable (KafkaError) -> Void = { _ in },
        onDelivery: @escaping @Sendable (KafkaDeliveryReport) -> Void = { _ in }
    ) {
        self.logger = logger
        self.onError = onError
        self.onDelivery = onDelivery
    }

    static func from(_ handle: OpaquePointer?) -> KafkaHandleCallbacks? {
        guard let handle, let opaque = rd_kafka_opaque(handle) else { return nil }
        return Unmanaged<KafkaHandleCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    }
}

private let kvbLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    handle, level, facility, message in
    guard let callbacks = KafkaHandleCallbacks.from(handle) else { return }
    let facilityName = facility.map { String(cString: $0) } ?? ""
    let text = "\(facilityName): \(message.map { String(cString: $0) } ?? "")"
    // syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug. Brokers that predate
    // allow.auto.create.topics (and the embedded cluster) get a warning on every connection
    // that the setting is ignored; kvb never names a topic before it exists, so that is noise.
    var logLevel: Logger.Level = level <= 3 ? .error : level == 4 ? .warning : level <= 6 ? .info : .debug
    if facilityName == "AUTOCREATE" { logLevel = .debug }
    callbacks.logger.log(level: logLevel, "\(text)", metadata: ["source": "librdkafka"])
}

private let kvbErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    handle, code, reason, _ in
    guard let callbacks = KafkaHandleCallbacks.from(handle) else { return }
    let error = KafkaError(code: code, reason.map { String(cString: $0) } ?? "Kafka error \(code)")
    callbacks.logger.warning("Kafka: \(error.message)", metadata: ["code": "\(error.name)"])
    callbacks.onError(error)
}

private let kvbDeliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    handle, message, _ in
    guard let callbacks = KafkaHandleCallbacks.from(handle), let message = message?.pointee else { return }
    let error = message.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(message.err, context: "delivery failed")
    let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
    let opaque = UInt64(UInt(bitPattern: message._private)) &- 1
    callbacks.onDelivery(KafkaDeliveryReport(id: opaque, topic: topic, partition: message.partition, offset: message.offset, error: error))
}

extension KafkaHandle {
    /// The value librdkafka holds for a property of this handle (what it will really use).
    func effectiveProperty(_ name: String) -> String? {
        (try? use { pointer in Self.property(name, of: pointer) }) ?? nil
    }

    private static func property(_ name: String, of pointer: OpaquePointer) -> String? {
        guard let conf = rd_kafka_conf(pointer) else { return nil }
        var size = 0
        guard rd_kafka_conf_get(conf, name, nil, &size) == RD_KAFKA_CONF_OK, size > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: size)
        guard rd_kafka_conf_get(conf, name, &buffer, &size) == RD_KAFKA_CONF_OK else { return nil }
        return String(errorBuffer: buffer)
    }
}

extension KafkaProducer {
    /// The value librdkafka uses for `name` in this producer (for diagnostics and tests).
    public func effectiveProperty(_ name: String) -> String? { handle.effectiveProperty(name) }
}

extension KafkaConsumer {
    /// The value librdkafka uses for `name` in this consumer (for diagnostics and tests).
    public func effectiveProperty(_ name: String) -> String? { handle.effectiveProperty(name) }
}
