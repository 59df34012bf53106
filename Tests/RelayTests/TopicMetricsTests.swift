import ControlPlane
import Testing
@testable import Relay

@Suite("Per-topic throughput and latency windows")
struct TopicMetricsTests {
    @Test func ratesAndPercentilesCoverOneWindowThenStartOver() throws {
        let metrics = TopicMetrics(nowMilliseconds: 0)
        for _ in 0..<10 { metrics.recordIn(topic: "cam", bytes: 1000) }
        for _ in 0..<20 { metrics.recordOut(topic: "cam", bytes: 500) }
        for ms in 1...100 { metrics.recordLatency(topic: "cam", stage: .written, milliseconds: Int64(ms)) }
        metrics.recordLatency(topic: "cam", stage: .acknowledged, milliseconds: -5)  // clock skew counts as 0

        let snapshot = try #require(metrics.snapshot(nowMilliseconds: 2000)["cam"])
        #expect(snapshot.rates.inFragments == 5)
        #expect(snapshot.rates.inBytes == 5000)
        #expect(snapshot.rates.outFragments == 10)
        #expect(snapshot.rates.outBytes == 5000)
        let written = try #require(snapshot.latency.first { $0.stage == .written })
        #expect(written.count == 100)
        #expect((49...51).contains(written.p50))
        #expect((98...100).contains(written.p99))
        #expect(written.max == 100)
        #expect(snapshot.latency.first { $0.stage == .acknowledged }?.max == 0)

        #expect(metrics.snapshot(nowMilliseconds: 3000).isEmpty, "a new window starts empty")
    }

    @Test func seriesOfIdleTopicsLeaveMetrics() {
        let metrics = TopicMetrics(nowMilliseconds: 0)
        metrics.recordIn(topic: "busy", bytes: 1)
        metrics.recordIn(topic: "gone", bytes: 1)
        metrics.setGauges(topic: "watched", lag: 0, viewers: 1, nowMilliseconds: 0)
        _ = metrics.snapshot(nowMilliseconds: 1_000)
        #expect(metrics.exportedTopicCount == 3)
        let later = TopicMetrics.idleSeriesMilliseconds + 5_000
        metrics.recordIn(topic: "busy", bytes: 1)
        metrics.setGauges(topic: "watched", lag: 0, viewers: 1, nowMilliseconds: later)
        _ = metrics.snapshot(nowMilliseconds: later)
        #expect(metrics.exportedTopicCount == 2, "the idle topic's series are gone, the active ones stay")
    }
}
