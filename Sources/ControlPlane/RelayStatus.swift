/// The document every relay publishes to the status topic once a second: everything the console
/// shows about it. JSON; unknown fields are ignored so relays and consoles can differ in version.
public struct RelayStatus: Codable, Sendable, Equatable {
    public var version = 1
    /// The relay's id (unique in the fleet).
    public var relay: String
    /// Where browsers reach it, e.g. `http://127.0.0.1:8080`.
    public var address: String
    public var startedAtMilliseconds: Int64
    public var sentAtMilliseconds: Int64
    public var sessions: [SessionStatus]
    public var topics: [TopicStatus]
    /// What the relay does with operator commands (absent from older relays).
    public var commands: CommandIntake?
    /// Why the relay cannot reach Kafka right now (absent while it can).
    public var kafkaProblem: String?
    /// The relay's latest error from Kafka in the last 10 s, e.g. a broker down or a leader
    /// moving, while the cluster as a whole still answers (absent when there was none).
    public var kafkaError: String?
    /// When the relay has more viewers than one document lists: which page of them `sessions`
    /// holds (publishers are always all listed). Absent when every viewer is listed.
    public var viewerPage: ViewerPage?

    public init(relay: String, address: String, startedAtMilliseconds: Int64, sentAtMilliseconds: Int64,
                sessions: [SessionStatus], topics: [TopicStatus], commands: CommandIntake? = nil, kafkaProblem: String? = nil) {
        self.relay = relay
        self.address = address
        self.startedAtMilliseconds = startedAtMilliseconds
        self.sentAtMilliseconds = sentAtMilliseconds
        self.sessions = sessions
        self.topics = topics
        self.commands = commands
        self.kafkaProblem = kafkaProblem
    }
}

/// How a relay treats operator commands: whether it holds the operator key (without it, it
/// applies none), how many it applied, and how many it refused, by reason (`unsigned`,
/// `bad_signature`, `replayed`, `stale`, `future`, `over_capacity`, `unreadable`,
/// `no_operator_key`).
/// One page of a relay's viewers: pages go round, one per status document, so a console that
/// keeps the latest of each page knows every viewer while each document stays small.
public struct ViewerPage: Codable, Sendable, Equatable {
    /// This page, from 0.
    public var index: Int
    /// How many pages there are now.
    public var count: Int
    /// Viewers on the relay in all.
    public var viewers: Int

    public init(index: Int, count: Int, viewers: Int) {
        self.index = index
        self.count = count
        self.viewers = viewers
    }
}

public struct CommandIntake: Codable, Sendable, Equatable {
    public var operatorKey: Bool
    public var applied: Int64
    public var rejected: [String: Int64]

    public init(operatorKey: Bool, applied: Int64 = 0, rejected: [String: Int64] = [:]) {
        self.operatorKey = operatorKey
        self.applied = applied
        self.rejected = rejected
    }

    /// Every refusal, whatever the reason.
    public var rejectedTotal: Int64 { rejected.values.reduce(0) { $0 &+ max(0, $1) } }
}

/// One publisher or viewer connection on a relay.
public struct SessionStatus: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable { case publisher, viewer }

    /// `p-<session uuid>` for publishers, `v-<number>` for viewers; unique on its relay.
    public var id: String
    public var role: Role
    public var topic: String
    public var remoteAddress: String
    public var userAgent: String
    public var connectedAtMilliseconds: Int64
    public var bytes: Int64
    /// Bits per second over the last status interval.
    public var bitrate: Int64
    /// Fragments this viewer missed because it was too slow (viewers only).
    public var skipped: Int64
    /// The live delay the viewer's page reports, in milliseconds (viewers only).
    public var liveDelayMilliseconds: Int64?
    /// What the viewer's page says it is doing: playing, waiting, paused...
    public var state: String?
    /// The latest glass-to-glass delay the viewer's page measured, in milliseconds (viewers of
    /// streams that carry the clock pattern only).
    public var glassMilliseconds: Int64?

    public init(id: String, role: Role, topic: String, remoteAddress: String, userAgent: String,
                connectedAtMilliseconds: Int64, bytes: Int64, bitrate: Int64, skipped: Int64 = 0,
                liveDelayMilliseconds: Int64? = nil, state: String? = nil, glassMilliseconds: Int64? = nil) {
        self.id = id
        self.role = role
        self.topic = topic
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
        self.connectedAtMilliseconds = connectedAtMilliseconds
        self.bytes = bytes
        self.bitrate = bitrate
        self.skipped = skipped
        self.liveDelayMilliseconds = liveDelayMilliseconds
        self.state = state
        self.glassMilliseconds = glassMilliseconds
    }
}

/// One topic as seen by one relay.
public struct TopicStatus: Codable, Sendable, Equatable {
    public var name: String
    public var paused: Bool
    public var publishers: Int
    public var viewers: Int
    public var inFragmentsPerSecond: Double
    public var inBytesPerSecond: Double
    public var outFragmentsPerSecond: Double
    public var outBytesPerSecond: Double
    /// This relay's consumer of the topic, when it has one.
    public var consumer: ConsumerStatus?
    /// Latency by stage, from the publisher's chunk arriving at a relay. Stages this version
    /// does not know (from newer relays) are left out when decoding.
    public var latency: [LatencySummary]

    public init(name: String, paused: Bool = false, publishers: Int = 0, viewers: Int = 0,
                inFragmentsPerSecond: Double = 0, inBytesPerSecond: Double = 0,
                outFragmentsPerSecond: Double = 0, outBytesPerSecond: Double = 0,
                consumer: ConsumerStatus? = nil, latency: [LatencySummary] = []) {
        self.name = name
        self.paused = paused
        self.publishers = publishers
        self.viewers = viewers
        self.inFragmentsPerSecond = inFragmentsPerSecond
        self.inBytesPerSecond = inBytesPerSecond
        self.outFragmentsPerSecond = outFragmentsPerSecond
        self.outBytesPerSecond = outBytesPerSecond
        self.consumer = consumer
        self.latency = latency
    }

    private enum CodingKeys: String, CodingKey {
        case name, paused, publishers, viewers, inFragmentsPerSecond, inBytesPerSecond, outFragmentsPerSecond,
             outBytesPerSecond, consumer, latency
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        paused = try c.decode(Bool.self, forKey: .paused)
        publishers = try c.decode(Int.self, forKey: .publishers)
        viewers = try c.decode(Int.self, forKey: .viewers)
        inFragmentsPerSecond = try c.decode(Double.self, forKey: .inFragmentsPerSecond)
        inBytesPerSecond = try c.decode(Double.self, forKey: .inBytesPerSecond)
        outFragmentsPerSecond = try c.decode(Double.self, forKey: .outFragmentsPerSecond)
        outBytesPerSecond = try c.decode(Double.self, forKey: .outBytesPerSecond)
        consumer = try c.decodeIfPresent(ConsumerStatus.self, forKey: .consumer)
        latency = try c.decode([KnownStage].self, forKey: .latency).compactMap(\.summary)
    }

    /// One latency entry, nil when its stage is one this version does not know.
    private struct KnownStage: Decodable {
        var summary: LatencySummary?

        private enum CodingKeys: String, CodingKey { case stage }

        init(from decoder: any Decoder) throws {
            let stage = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .stage)
            summary = LatencySummary.Stage(rawValue: stage) == nil ? nil : try LatencySummary(from: decoder)
        }
    }
}

/// A relay's consumer position on a partition.
public struct ConsumerStatus: Codable, Sendable, Equatable {
    public var partition: Int32
    /// Offset of the next record the consumer will deliver.
    public var position: Int64
    public var highWatermark: Int64
    /// The first offset Kafka still holds: with ``highWatermark``, the range retained (what
    /// viewers can rewind into and download). Nil from relays that do not say.
    public var lowWatermark: Int64?
    /// Age of the newest fragment delivered, in milliseconds (now − its ingest time).
    public var newestAgeMilliseconds: Int64?

    public init(partition: Int32 = 0, position: Int64, highWatermark: Int64, lowWatermark: Int64? = nil, newestAgeMilliseconds: Int64?) {
        self.partition = partition
        self.position = position
        self.highWatermark = highWatermark
        self.lowWatermark = lowWatermark
        self.newestAgeMilliseconds = newestAgeMilliseconds
    }

    /// Records Kafka holds of the partition, when the low watermark is known.
    public var retainedRecords: Int64? { lowWatermark.map { max(0, highWatermark.saturatingSubtract(max(0, $0))) } }

    /// Records behind: high watermark − position, never negative.
    public var lag: Int64 { ConsumerLag.messages(highWatermark: highWatermark, position: position) }

    private enum CodingKeys: String, CodingKey { case partition, position, highWatermark, lowWatermark, newestAgeMilliseconds, lag }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        partition = try c.decode(Int32.self, forKey: .partition)
        position = try c.decode(Int64.self, forKey: .position)
        highWatermark = try c.decode(Int64.self, forKey: .highWatermark)
        lowWatermark = try c.decodeIfPresent(Int64.self, forKey: .lowWatermark)
        newestAgeMilliseconds = try c.decodeIfPresent(Int64.self, forKey: .newestAgeMilliseconds)
    }

    /// Encodes `lag` too, so readers of the JSON need not do the arithmetic.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(partition, forKey: .partition)
        try c.encode(position, forKey: .position)
        try c.encode(highWatermark, forKey: .highWatermark)
        try c.encodeIfPresent(lowWatermark, forKey: .lowWatermark)
        try c.encodeIfPresent(newestAgeMilliseconds, forKey: .newestAgeMilliseconds)
        try c.encode(lag, forKey: .lag)
    }
}

/// Lag arithmetic.
public enum ConsumerLag {
    /// Records a consumer at `position` still has to read: `highWatermark − position`, at least 0.
    /// A position below 0 (not yet known) counts from 0.
    public static func messages(highWatermark: Int64, position: Int64) -> Int64 {
        // Saturating: the numbers may come from a crafted document.
        max(0, highWatermark.saturatingSubtract(max(0, position)))
    }
}

/// Percentiles of one latency stage over the recent window, in milliseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    public enum Stage: String, Codable, Sendable, CaseIterable {
        /// Publisher chunk received → Kafka acknowledged the fragment.
        case acknowledged
        /// Publisher chunk received → fragment consumed back by a relay.
        case consumed
        /// Publisher chunk received → fragment written to a viewer's socket.
        case written
        /// The live delay viewer pages report (their buffer: newest media held − playhead).
        case viewerDelay
        /// Glass to glass: the broadcaster drew the frame (the clock test pattern carries the
        /// time) → a viewer's screen showed it. Only streams that carry the pattern have it.
        case glass
    }

    public var stage: Stage
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double

    public init(stage: Stage, count: Int, p50: Double, p90: Double, p99: Double, max: Double) {
        self.stage = stage
        self.count = count
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
    }
}
