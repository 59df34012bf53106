import ControlPlane
import Histogram
import Kafka
import Metrics

/// Per-topic throughput counters and latency histograms of one relay, cheap on the hot path (a
/// lock, two adds, a histogram record). ``snapshot(nowMilliseconds:)`` turns them into rates and
/// percentiles for the status document and starts a new window. The same figures go to
/// swift-metrics (and so to `/metrics`).
public final class TopicMetrics: Sendable {
    private struct Window: Sendable {
        var inFragments: Int64 = 0
        var inBytes: Int64 = 0
        var outFragments: Int64 = 0
        var outBytes: Int64 = 0
        var latency: [LatencySummary.Stage: Histogram<UInt64>] = [:]

        mutating func countIn(bytes: Int) {
            inFragments += 1
            inBytes += Int64(bytes)
        }

        mutating func countOut(bytes: Int) {
            outFragments += 1
            outBytes += Int64(bytes)
        }
    }

    private struct Exported: Sendable {
        let fragmentsIn: Counter
        let bytesIn: Counter
        let fragmentsOut: Counter
        let bytesOut: Counter
        let latency: [LatencySummary.Stage: Timer]
        let lag: Gauge
        let viewers: Gauge

        /// Removes these series from `/metrics`.
        func destroy() {
            for counter in [fragmentsIn, bytesIn, fragmentsOut, bytesOut] { counter.destroy() }
            for timer in latency.values { timer.destroy() }
            lag.destroy()
            viewers.destroy()
        }
    }

    /// A topic's series leave `/metrics` after this long without activity (bounded series).
    public static let idleSeriesMilliseconds: Int64 = 300_000
    /// At most this many topics have series at once; the least recently active go first.
    public static let maxTopicSeries = 1_000

    private let windows = Locked<[String: Window]>([:])
    private let lastSnapshot = Locked<Int64>(0)
    private let exported = Locked<[String: Exported]>([:])
    /// When each exported topic was last active (a status interval with traffic, or gauges set).
    private let lastActive = Locked<[String: Int64]>([:])

    public init(nowMilliseconds: Int64) {
        lastSnapshot.withLock { $0 = nowMilliseconds }
    }

    private func exported(_ topic: String) -> Exported {
        exported.withLock { all in
            if let existing = all[topic] { return existing }
            let dimensions = [("topic", topic)]
            var timers: [LatencySummary.Stage: Timer] = [:]
            for stage in LatencySummary.Stage.allCases {
                timers[stage] = Timer(label: "kvb_latency_seconds", dimensions: dimensions + [("stage", stage.rawValue)])
            }
            let made = Exported(
                fragmentsIn: Counter(label: "kvb_fragments_in_total", dimensions: dimensions),
                bytesIn: Counter(label: "kvb_bytes_in_total", dimensions: dimensions),
                fragmentsOut: Counter(label: "kvb_fragments_out_total", dimensions: dimensions),
                bytesOut: Counter(label: "kvb_bytes_out_total", dimensions: dimensions),
                latency: timers,
                lag: Gauge(label: "kvb_consumer_lag_records", dimensions: dimensions + [("partition", "0")]),
                viewers: Gauge(label: "kvb_viewers", dimensions: dimensions)
            )
            all[topic] = made
            return made
        }
    }

    /// A fragment arrived from a publisher.
    public func recordIn(topic: String, bytes: Int) {
        windows.withLock { windows in
            windows[topic, default: Window()].countIn(bytes: bytes)
        }
        let e = exported(topic)
        e.fragmentsIn.increment()
        e.bytesIn.increment(by: bytes)
    }

    /// A frame was written to a viewer's socket.
    public func recordOut(topic: String, bytes: Int) {
        windows.withLock { windows in
            windows[topic, default: Window()].countOut(bytes: bytes)
        }
        let e = exported(topic)
        e.fragmentsOut.increment()
        e.bytesOut.increment(by: bytes)
    }

    /// A latency sample, in milliseconds.
    public func recordLatency(topic: String, stage: LatencySummary.Stage, milliseconds: Int64) {
        let value = UInt64(max(0, milliseconds))
        windows.withLock { windows in
            // Mutated in place: copying a histogram out and back would copy its counts each time.
            _ = windows[topic, default: Window()].latency[stage, default: Self.newHistogram()].record(min(value, Self.maxLatency))
        }
        exported(topic).latency[stage]?.recordMilliseconds(value)
    }

    /// Latencies above an hour are recorded as an hour.
    static let maxLatency: UInt64 = 3_600_000

    static func newHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: maxLatency, numberOfSignificantValueDigits: .two)
    }

    /// Exports a topic's consumer lag and viewer count (set when the status is built).
    public func setGauges(topic: String, lag: Int64?, viewers: Int, nowMilliseconds: Int64) {
        lastActive.withLock { $0[topic] = nowMilliseconds }
        let e = exported(topic)
        if let lag { e.lag.record(lag) }
        e.viewers.record(viewers)
    }

    /// Rates and percentiles since the previous snapshot, per topic; starts a new window.
    public func snapshot(nowMilliseconds: Int64) -> [String: (rates: (inFragments: Double, inBytes: Double, outFragments: Double, outBytes: Double), latency: [LatencySummary])] {
        let elapsed = lastSnapshot.withLock { last -> Double in
            defer { last = nowMilliseconds }
            return Double(max(1, nowMilliseconds - last)) / 1000
        }
        let taken = windows.withLock { windows -> [String: Window] in
            defer { windows = [:] }
            return windows
        }
        pruneSeries(active: taken.keys, nowMilliseconds: nowMilliseconds)
        return taken.mapValues { window in
            let latency = LatencySummary.Stage.allCases.compactMap { stage -> LatencySummary? in
                guard let h = window.latency[stage], h.totalCount > 0 else { return nil }
                return LatencySummary(
                    stage: stage, count: Int(h.totalCount),
                    p50: Double(h.valueAtPercentile(50)), p90: Double(h.valueAtPercentile(90)),
                    p99: Double(h.valueAtPercentile(99)), max: Double(h.max)
                )
            }
            return ((Double(window.inFragments) / elapsed, Double(window.inBytes) / elapsed,
                     Double(window.outFragments) / elapsed, Double(window.outBytes) / elapsed), latency)
        }
    }

    /// Marks `active` topics, then removes the series of topics idle for ``idleSeriesMilliseconds``
    /// (and the least recently active beyond ``maxTopicSeries``).
    private func pruneSeries(active: some Sequence<String>, nowMilliseconds now: Int64) {
        let stale = lastActive.withLock { last -> [String] in
            for topic in active { last[topic] = now }
            var stale = last.filter { now - $0.value > Self.idleSeriesMilliseconds }.map(\.key)
            if last.count - stale.count > Self.maxTopicSeries {
                let kept = last.filter { now - $0.value <= Self.idleSeriesMilliseconds }.sorted { $0.value < $1.value }
                stale += kept.prefix(kept.count - Self.maxTopicSeries).map(\.key)
            }
            for topic in stale { last[topic] = nil }
            return stale
        }
        guard !stale.isEmpty else { return }
        let removed = exported.withLock { all in stale.compactMap { all.removeValue(forKey: $0) } }
        for series in removed { series.destroy() }
    }

    /// Topics with series in `/metrics` now.
    public var exportedTopicCount: Int { exported.withLock { $0.count } }
}
