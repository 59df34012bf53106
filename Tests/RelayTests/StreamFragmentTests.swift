import Kafka
import Testing
@testable import Relay

@Suite("Fragments as Kafka records")
struct StreamFragmentTests {
    func consumed(_ message: KafkaOutgoingMessage, offset: Int64 = 7) -> KafkaMessage {
        KafkaMessage(topic: message.topic, partition: message.partition, offset: offset, key: message.key,
                     value: message.value, headers: message.headers, timestamp: nil)
    }

    @Test func aKeyframeFragmentCarriesEverythingAViewerNeeds() throws {
        let topic = try TopicName("cam")
        let fragment = Fragments.key("s1", 42)
        let record = fragment.kafkaMessage(topic: topic)
        #expect(record.partition == 0)
        #expect(record.key == Array("cam".utf8))
        #expect(record.headers.map(\.name) == ["kvb-session", "kvb-seq", "kvb-ingest-ms", "kvb-keyframe", "kvb-relay", "kvb-init"])
        var expected = fragment
        expected.offset = 7
        #expect(StreamFragment(consumed(record)) == expected)
    }

    @Test func aFragmentThatMakesAJoinPointCarriesTheInitSegmentAndTheClusterStart() throws {
        let topic = try TopicName("cam")
        let fragment = Fragments.joining("s1", 9, from: 7)
        let record = fragment.kafkaMessage(topic: topic)
        #expect(record.headers.map(\.name) == ["kvb-session", "kvb-seq", "kvb-ingest-ms", "kvb-keyframe", "kvb-relay", "kvb-init", "kvb-join-from"])
        var expected = fragment
        expected.offset = 7
        #expect(StreamFragment(consumed(record)) == expected)
        // A join point without the init segment, or with a malformed sequence, is not a kvb fragment.
        var broken = record
        broken.headers.removeAll { $0.name == "kvb-init" }
        #expect(StreamFragment(consumed(broken)) == nil)
        broken = record
        broken.headers.removeAll { $0.name == "kvb-join-from" }
        broken.headers.append(KafkaHeader("kvb-join-from", string: "x"))
        #expect(StreamFragment(consumed(broken)) == nil)
    }

    @Test func joinPointsInsideFragmentsAreByteOffsets() throws {
        let topic = try TopicName("cam")
        let inside = Fragments.keyAt("s1", 3, at: 4)
        let record = inside.kafkaMessage(topic: topic)
        #expect(record.headers.map(\.name) == ["kvb-session", "kvb-seq", "kvb-ingest-ms", "kvb-keyframe", "kvb-relay", "kvb-init", "kvb-join-at"])
        #expect(record.headers.first { $0.name == "kvb-keyframe" }?.value == Array("0".utf8), "relays that read only kvb-keyframe do not start there")
        var expected = inside
        expected.offset = 7
        #expect(StreamFragment(consumed(record)) == expected)
        let named = Fragments.joining("s1", 9, from: 7, offset: 120)
        let namedRecord = named.kafkaMessage(topic: topic)
        #expect(namedRecord.headers.suffix(2).map(\.name) == ["kvb-join-from", "kvb-join-from-offset"])
        expected = named
        expected.offset = 7
        #expect(StreamFragment(consumed(namedRecord)) == expected)
        // Offsets out of range, malformed or without what they refer to are refused.
        for (name, value) in [("kvb-join-at", "10"), ("kvb-join-at", "-1"), ("kvb-join-at", "0"), ("kvb-join-at", "x")] {
            var broken = record
            broken.headers.removeAll { $0.name == name }
            broken.headers.append(KafkaHeader(name, string: value))
            #expect(StreamFragment(consumed(broken)) == nil, "\(name): \(value)")
        }
        var broken = namedRecord
        broken.headers.removeAll { $0.name == "kvb-join-from" }
        #expect(StreamFragment(consumed(broken)) == nil, "an offset without the fragment it is in")
        broken = namedRecord
        broken.headers.removeAll { $0.name == "kvb-join-from-offset" }
        broken.headers.append(KafkaHeader("kvb-join-from-offset", string: "-3"))
        #expect(StreamFragment(consumed(broken)) == nil)
    }

    @Test func deltaAndEndFragmentsRoundTrip() throws {
        let topic = try TopicName("cam")
        for fragment in [Fragments.delta("s1", 3), Fragments.end("s1", 4)] {
            let back = StreamFragment(consumed(fragment.kafkaMessage(topic: topic)))
            #expect(back?.bytes == fragment.bytes)
            #expect(back?.isEnd == fragment.isEnd)
            #expect(back?.initSegment == nil)
        }
    }

    @Test func recordsThatAreNotKvbFragmentsAreIgnored() {
        let plain = KafkaMessage(topic: "t", partition: 0, offset: 0, key: nil, value: [1, 2], headers: [], timestamp: nil)
        #expect(StreamFragment(plain) == nil)
        let keyWithoutInit = KafkaMessage(topic: "t", partition: 0, offset: 0, key: nil, value: [1], headers: [
            KafkaHeader("kvb-session", string: "s"), KafkaHeader("kvb-seq", string: "1"),
            KafkaHeader("kvb-ingest-ms", string: "5"), KafkaHeader("kvb-keyframe", string: "1"),
        ], timestamp: nil)
        #expect(StreamFragment(keyWithoutInit) == nil)
        let badSeq = KafkaMessage(topic: "t", partition: 0, offset: 0, key: nil, value: [1], headers: [
            KafkaHeader("kvb-session", string: "s"), KafkaHeader("kvb-seq", string: "x"), KafkaHeader("kvb-ingest-ms", string: "5"),
        ], timestamp: nil)
        #expect(StreamFragment(badSeq) == nil)
    }
}
