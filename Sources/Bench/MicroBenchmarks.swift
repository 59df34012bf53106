import Foundation
import Kafka
import Logging
import Relay
import WebM

func measure(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let elapsed = try clock.measure(body)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

/// The micro-benchmarks: the segmenter, fan-out decisions, and a produce→consume round trip
/// through the embedded cluster.
enum MicroBenchmarks {
    static func run(fixturePath: String) throws {
        guard let fixture = FileManager.default.contents(atPath: fixturePath).map(Array.init) else {
            throw BenchError("cannot read \(fixturePath)")
        }
        // 1. WebM segmenter throughput, in the browser's 100 ms chunking (~2 KB chunks).
        do {
            let rounds = 200
            var fragments = 0
            let seconds = try measure {
                for _ in 0..<rounds {
                    var segmenter = WebMSegmenter()
                    var index = 0
                    while index < fixture.count {
                        let end = min(fixture.count, index + 2048)
                        for output in try segmenter.append(fixture[index..<end]) {
                            if case .fragment = output { fragments += 1 }
                        }
                        index = end
                    }
                }
            }
            let megabytes = Double(fixture.count * rounds) / 1_048_576
            print(String(format: "webm.segmenter        %8.1f MB/s   %9.0f fragments/s   (%d KB fixture x %d)",
                         megabytes / seconds, Double(fragments) / seconds, fixture.count / 1024, rounds))
        }

        // 2. Fan-out decisions: one fragment offered to many viewer queues and drained.
        do {
            let viewers = 1000
            let fragmentsPerViewer = 1000
            var states = (0..<viewers).map { _ in ViewerStreamState(maxQueuedBytes: 4 << 20) }
            let key = StreamFragment(session: "s", sequence: 0, ingestMilliseconds: 0, isKeyframe: true,
                                     initSegment: Array(fixture.prefix(188)), relay: "r", bytes: Array(repeating: 1, count: 2000))
            let seconds = measure {
                for i in 0..<viewers { _ = states[i].offer(key) }
                for seq in 1..<fragmentsPerViewer {
                    let fragment = StreamFragment(session: "s", sequence: UInt64(seq), ingestMilliseconds: 0, isKeyframe: false,
                                                  initSegment: nil, relay: "r", bytes: key.bytes)
                    for i in 0..<viewers {
                        _ = states[i].offer(fragment)
                        _ = states[i].next()
                    }
                }
            }
            print(String(format: "relay.fanout          %8.2f M offers/s (%d viewers x %d fragments)",
                         Double(viewers * fragmentsPerViewer) / seconds / 1e6, viewers, fragmentsPerViewer))
        }

        // 3. Produce -> consume latency through the embedded cluster, relay settings, 64 KB at 50/s.
        do {
            var logger = Logger(label: "bench")
            logger.logLevel = .error
            let cluster = try EmbeddedKafkaCluster(logger: logger)
            defer { cluster.close() }
            try cluster.createTopic("bench", partitions: 1)
            let count = 250
            let result = try KafkaRoundTrip.run(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers),
                                                topic: "bench", count: count, logger: logger)
            print(String(format: "kafka.produce→consume median %.1f ms  p99 %.1f ms  max %.1f ms  (%d x 64 KB at 50/s, embedded cluster)",
                         result.p50, result.p99, result.max, count))
        }
    }
}
