import ControlPlane
@testable import ConsoleUI

/// Status documents for the console tests.
enum Samples {
    static let now: Int64 = 1_000_000

    static func relay(_ id: String, sentAt: Int64 = now, paused: Bool = false, viewers: Int = 2) -> RelayStatus {
        var sessions = [SessionStatus(id: "p-abc", role: .publisher, topic: "cam", remoteAddress: "127.0.0.1:5000",
                                      userAgent: "Chromium", connectedAtMilliseconds: now - 65_000, bytes: 5_000_000, bitrate: 1_200_000)]
        for n in 0..<viewers {
            sessions.append(SessionStatus(id: "v-\(n + 1)", role: .viewer, topic: "cam", remoteAddress: "127.0.0.1:600\(n)",
                                          userAgent: "Chromium", connectedAtMilliseconds: now - 5_000, bytes: 100_000,
                                          bitrate: 1_100_000, skipped: Int64(n), liveDelayMilliseconds: 800, state: paused ? "paused" : "playing"))
        }
        let topic = TopicStatus(
            name: "cam", paused: paused, publishers: 1, viewers: viewers, inFragmentsPerSecond: 70, inBytesPerSecond: 150_000,
            outFragmentsPerSecond: 140, outBytesPerSecond: 300_000,
            consumer: ConsumerStatus(position: 990, highWatermark: 1000, newestAgeMilliseconds: 12),
            latency: [LatencySummary(stage: .acknowledged, count: 70, p50: 2.5, p90: 4, p99: 6, max: 9),
                      LatencySummary(stage: .consumed, count: 70, p50: 4.2, p90: 6, p99: 9, max: 12),
                      LatencySummary(stage: .written, count: 140, p50: 5.1, p90: 7, p99: 11.5, max: 20)])
        let other = TopicStatus(name: "lobby")
        return RelayStatus(relay: id, address: "http://127.0.0.1:8080", startedAtMilliseconds: now - 3_600_000,
                           sentAtMilliseconds: sentAt, sessions: sessions, topics: [topic, other])
    }

    /// What the console read of Kafka: a session of `cam` live now, and an older one of
    /// `lobby` that ended and whose beginning has left retention.
    static let recordings = RecordingList(recordings: [
        .init(topic: "cam", session: RecordedSession(id: "s-live", relay: "relay-a", startedAtMilliseconds: now - 65_000,
                                                     endedAtMilliseconds: now - 100, bytes: 9_500_000, records: 900,
                                                     firstOffset: 100, lastOffset: 999, ended: false, complete: true)),
        .init(topic: "lobby", session: RecordedSession(id: "s/old", relay: "relay-gone", startedAtMilliseconds: now - 600_000,
                                                       endedAtMilliseconds: now - 480_000, bytes: 2_000_000, records: 400,
                                                       firstOffset: 0, lastOffset: 399, ended: true, complete: false)),
    ], total: 2, topics: 2, pendingTopics: [], madeAtMilliseconds: now)

    static func fleet(_ ids: [String] = ["relay-a", "relay-b"]) -> Fleet {
        var fleet = Fleet()
        for id in ids { fleet.apply(relay(id), receivedAtMilliseconds: now) }
        return fleet
    }
}
