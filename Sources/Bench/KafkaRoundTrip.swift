import ArgumentParser
import Foundation
import Kafka
import Logging

/// `kvb-bench kafka`: the produce → consume round trip of one cluster, with kvb's tuned settings
/// and with librdkafka's defaults, one line each. `make bench` runs it on the embedded cluster and
/// on Tansu, side by side.
struct KafkaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Produce → consume round trip on a cluster, kvb's settings against librdkafka's defaults.")

    @Option(help: "The cluster (HOST:PORT); without it, an embedded cluster in this process.")
    var bootstrap: String?

    @Option(help: "What to call the cluster in the output.")
    var label = "embedded"

    @Option(help: "Records per run (64 KB each, 50 a second).")
    var count = 250

    func run() throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var cluster: EmbeddedKafkaCluster?
        let servers: String
        if let bootstrap {
            servers = bootstrap
        } else {
            let embedded = try EmbeddedKafkaCluster(logger: logger)
            cluster = embedded
            servers = embedded.bootstrapServers
        }
        defer { cluster?.close() }
        print("kafka round trip   cluster    librdkafka  settings               p50        p99        max")
        for (name, properties) in [("kvb (tuned)", [String: String]()), ("librdkafka defaults", KafkaRoundTrip.librdkafkaDefaults)] {
            let topic = "bench-\(UUID().uuidString.prefix(8).lowercased())"
            try cluster?.createTopic(topic, partitions: 1)
            let configuration = KafkaConfiguration(bootstrapServers: servers, properties: properties)
            let result = try KafkaRoundTrip.run(configuration: configuration, topic: topic, count: count, logger: logger)
            func column(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
            print("                   " + column(label, 10) + " " + column(Librdkafka.version, 11) + " " + column(name, 20)
                  + String(format: " %7.1f ms %7.1f ms %7.1f ms", result.p50, result.p99, result.max))
        }
    }
}

/// One producer and one consumer on one partition: how long a record takes from `send` to
/// `poll`, in milliseconds.
enum KafkaRoundTrip {
    /// What kvb changes, set back to librdkafka's own defaults (2.x): a 5 ms batching delay,
    /// 500 ms fetch waits, Nagle's algorithm on, no idempotence.
    static let librdkafkaDefaults = [
        "linger.ms": "5",
        "fetch.wait.max.ms": "500",
        "fetch.error.backoff.ms": "500",
        "socket.nagle.disable": "false",
        "enable.idempotence": "false",
    ]

    struct Result {
        var p50: Double
        var p99: Double
        var max: Double
    }

    static func run(configuration: KafkaConfiguration, topic: String, count: Int, logger: Logger) throws -> Result {
        let producer = try KafkaProducer(configuration: configuration, logger: logger) { _ in }
        defer { producer.close() }
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        defer { consumer.close() }
        // Create the topic (a first record) and start reading after it.
        try producer.send(KafkaOutgoingMessage(topic: topic, key: [], value: [0]), id: 0)
        guard producer.flush(timeoutMilliseconds: 10_000) else { throw BenchError("\(topic): the first record was not delivered in 10 s") }
        let marks = try consumer.queryWatermarks(topic: topic, timeoutMilliseconds: 10_000)
        try consumer.assign(topic: topic, offset: .offset(marks.high))
        let payload = [UInt8](repeating: 7, count: 64 << 10)
        var latencies: [Double] = []
        let start = Date()
        for i in 0..<count {
            let sent = Date().timeIntervalSince1970
            try producer.send(KafkaOutgoingMessage(topic: topic, key: [], value: payload,
                                                   headers: [KafkaHeader("t", string: String(sent))]), id: UInt64(i + 1))
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                guard case .message(let message)? = consumer.poll(timeoutMilliseconds: 1000) else { continue }
                let sentAt = message.header("t").flatMap { Double(String(decoding: $0, as: UTF8.self)) } ?? sent
                latencies.append((Date().timeIntervalSince1970 - sentAt) * 1000)
                break
            }
            let next = start.addingTimeInterval(Double(i + 1) / 50)
            if next > Date() { Thread.sleep(until: next) }
        }
        guard latencies.count == count else { throw BenchError("\(topic): \(count - latencies.count) of \(count) records never came back") }
        latencies.sort()
        return Result(p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies.last ?? .nan)
    }
}
