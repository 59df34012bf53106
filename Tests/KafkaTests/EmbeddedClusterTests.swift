import Foundation
import Kafka
import Logging
import Testing

/// The Kafka layer against the embedded cluster, over TCP through librdkafka.
@Suite("Kafka layer over the embedded cluster", .serialized)
final class EmbeddedClusterTests {
    let cluster: EmbeddedKafkaCluster
    let configuration: KafkaConfiguration
    let logger = Logger(label: "kafka-test")

    init() throws {
        cluster = try EmbeddedKafkaCluster(logger: logger)
        configuration = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
    }

    deinit { cluster.close() }

    /// Produces `count` records and waits for their delivery reports.
    func produce(_ count: Int, topic: String, from first: Int = 0) throws -> [KafkaDeliveryReport] {
        let reports = Locked<[KafkaDeliveryReport]>([])
        let producer = try KafkaProducer(configuration: configuration, logger: logger) { report in
            reports.withLock { $0.append(report) }
        }
        defer { producer.close() }
        for i in first..<first + count {
            try producer.send(KafkaOutgoingMessage(
                topic: topic, key: Array("k".utf8), value: Array("value \(i)".utf8),
                headers: [KafkaHeader("n", string: String(i)), KafkaHeader("null", nil)]
            ), id: UInt64(i))
        }
        #expect(producer.flush(timeoutMilliseconds: 10_000))
        return reports.withLock { $0 }.sorted { $0.id < $1.id }
    }

    /// Polls until `stop` says so or 10 s pass.
    func consume(_ consumer: KafkaConsumer, until stop: ([KafkaMessage], KafkaConsumerEvent) -> Bool) -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard let event = consumer.poll(timeoutMilliseconds: 100) else { continue }
            if case .message(let m) = event { messages.append(m) }
            if stop(messages, event) { break }
        }
        return messages
    }

    @Test func producedRecordsComeBackInOrderWithHeaders() throws {
        try cluster.createTopic("roundtrip")
        let reports = try produce(20, topic: "roundtrip")
        #expect(reports.count == 20)
        #expect(reports.allSatisfy { $0.error == nil })
        #expect(reports.map(\.offset) == Array(0..<20))

        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        defer { consumer.close() }
        try consumer.assign(topic: "roundtrip", offset: .beginning)
        let messages = consume(consumer) { _, event in
            if case .endOfPartition(_, _, let offset) = event { return offset == 20 } else { return false }
        }
        #expect(messages.map(\.offset) == Array(0..<20))
        #expect(messages.map { String(decoding: $0.value, as: UTF8.self) } == (0..<20).map { "value \($0)" })
        #expect(messages.first?.key == Array("k".utf8))
        #expect(messages.first?.header("n") == Array("0".utf8))
        #expect(messages.first?.headers.contains(KafkaHeader("null", nil)) == true)
        #expect(messages.first?.timestamp != nil)
        #expect(try consumer.queryWatermarks(topic: "roundtrip") == KafkaWatermarks(low: 0, high: 20))
    }

    @Test func consumerStartsAtAnOffsetOrAtTheEnd() throws {
        try cluster.createTopic("positions")
        _ = try produce(10, topic: "positions")

        let fromFive = try KafkaConsumer(configuration: configuration, logger: logger)
        defer { fromFive.close() }
        try fromFive.assign(topic: "positions", offset: .offset(5))
        let tail = consume(fromFive) { messages, _ in messages.count == 5 }
        #expect(tail.map(\.offset) == [5, 6, 7, 8, 9])
        #expect(fromFive.position(topic: "positions") == 10)

        let fromEnd = try KafkaConsumer(configuration: configuration, logger: logger)
        defer { fromEnd.close() }
        try fromEnd.assign(topic: "positions", offset: .end)
        // Reach the end first, then produce: only the new records arrive.
        _ = consume(fromEnd) { _, event in if case .endOfPartition = event { true } else { false } }
        _ = try produce(3, topic: "positions", from: 10)
        let fresh = consume(fromEnd) { messages, _ in messages.count == 3 }
        #expect(fresh.map(\.offset) == [10, 11, 12])

        // The mock cluster does not implement offsets-for-times: documented to start at the end.
        let byTime = try KafkaConsumer(configuration: configuration, logger: logger)
        defer { byTime.close() }
        try byTime.assign(topic: "positions", offset: .time(millisecondsSinceEpoch: 0))
        _ = consume(byTime) { _, event in if case .endOfPartition = event { true } else { false } }
        _ = try produce(1, topic: "positions", from: 13)
        let afterTime = consume(byTime) { messages, _ in messages.count == 1 }
        #expect(afterTime.map(\.offset) == [13], "the mock has no offsets-for-times: reading starts at the end")
        #expect(try byTime.offset(atTime: 0, topic: "positions") == nil, "the mock names no offset for a time")
    }

    @Test func adminListsTopicsAndCreatesThemIdempotently() throws {
        try cluster.createTopic("listed", partitions: 1)
        try cluster.createTopic("listed", partitions: 1)
        let admin = try KafkaAdmin(configuration: configuration, logger: logger)
        defer { admin.close() }
        let topics = try admin.listTopics()
        #expect(topics.contains { $0.name == "listed" && $0.partitionCount == 1 && $0.replicas == 1 })
        #expect(try admin.queryWatermarks(topic: "listed") == KafkaWatermarks(low: 0, high: 0))
    }

    @Test func aProducerSurvivesTheBrokerGoingAwayAndDeliversLater() throws {
        try cluster.createTopic("outage")
        let reports = Locked<[KafkaDeliveryReport]>([])
        let errors = Locked<[KafkaError]>([])
        let producer = try KafkaProducer(configuration: configuration, logger: logger, onError: { e in errors.withLock { $0.append(e) } }) { report in
            reports.withLock { $0.append(report) }
        }
        defer { producer.close() }
        try producer.send(KafkaOutgoingMessage(topic: "outage", key: [], value: [1]), id: 1)
        #expect(producer.flush(timeoutMilliseconds: 5000))
        cluster.setBroker(1, up: false)
        try producer.send(KafkaOutgoingMessage(topic: "outage", key: [], value: [2]), id: 2)
        #expect(!producer.flush(timeoutMilliseconds: 500), "nothing can be delivered while the broker is down")
        cluster.setBroker(1, up: true)
        #expect(producer.flush(timeoutMilliseconds: 10_000))
        #expect(reports.withLock { $0.map(\.id).sorted() } == [1, 2])
        #expect(reports.withLock { $0.allSatisfy { $0.error == nil } })
    }
}
