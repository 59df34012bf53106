import Kafka
import Testing

@Suite("Where reading a topic's recent past starts")
struct KafkaWatermarksTests {
    let marks = KafkaWatermarks(low: 100, high: 10_000)

    @Test func theOffsetForTheTimeWhenTheClusterNamesOne() {
        #expect(marks.recentStart(timeOffset: 9_800, fallbackRecords: 50, maxRecords: 5_000) == 9_800)
        #expect(marks.recentStart(timeOffset: 10_000, fallbackRecords: 50, maxRecords: 5_000) == 10_000)
    }

    @Test func aFixedNumberOfRecordsBackWhenItNamesNone() {
        #expect(marks.recentStart(timeOffset: nil, fallbackRecords: 50, maxRecords: 5_000) == 9_950)
        #expect(KafkaWatermarks(low: 0, high: 20).recentStart(timeOffset: nil, fallbackRecords: 50, maxRecords: 5_000) == 0)
    }

    /// A broker that answers a time past its newest record with its oldest offset (Tansu 0.6
    /// does) must not make a reader replay the whole topic.
    @Test func neverFurtherBackThanTheBound() {
        #expect(marks.recentStart(timeOffset: 0, fallbackRecords: 50, maxRecords: 5_000) == 5_000)
        #expect(marks.recentStart(timeOffset: 20_000, fallbackRecords: 50, maxRecords: 5_000) == 10_000)
        #expect(KafkaWatermarks(low: 9_990, high: 10_000).recentStart(timeOffset: 0, fallbackRecords: 50, maxRecords: 5_000) == 9_990)
    }
}
