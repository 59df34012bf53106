import Kafka
import Foundation
import WebM

/// One publisher connection: its WebM segmenter, its sequence numbers and its counters.
/// A reconnect is a new session with a new id.
public final class PublishSession: Sendable {
    public let id: String
    public let number: UInt32
    public let topic: TopicName
    public let remoteAddress: String
    public let userAgent: String
    public let relayID: String
    public let startedMilliseconds: Int64
    private let limits: RelayLimits

    public struct Counters: Sendable, Equatable {
        public var bytes = 0
        public var fragments = 0
        public var keyframes = 0
        public var acked = 0
        public var failed = 0
        public var lastDeliveryError: String?
    }

    private struct Inner: Sendable {
        var segmenter: WebMSegmenter
        var bitrate: TokenBucket
        var initSegment: [UInt8]?
        var nextSequence: UInt64 = 0
        /// Where the current Cluster opened (fragment and byte), so that a later fragment holding
        /// its first video block can name it as a join point.
        var openCluster: FragmentAssembly.Position?
        var counters = Counters()
        /// Ingest time of each fragment produced and not yet acknowledged (low 32 bits of seq).
        var unacknowledged: [UInt32: Int64] = [:]
    }

    private let inner: Locked<Inner>

    init(number: UInt32, topic: TopicName, remoteAddress: String, userAgent: String, relayID: String, limits: RelayLimits) {
        self.id = UUID().uuidString.lowercased()
        self.number = number
        self.topic = topic
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
        self.relayID = relayID
        self.startedMilliseconds = currentMilliseconds()
        let bytesPerSecond = Double(limits.publishBitsPerSecond) / 8
        let burst = max(Double(limits.publishMessageBytes), bytesPerSecond * Double(max(1, limits.publishBurstSeconds)))
        self.limits = limits
        self.inner = Locked(Inner(
            segmenter: WebMSegmenter(maxElementSize: limits.elementBytes, maxInitSegmentSize: limits.initSegmentBytes),
            bitrate: TokenBucket(capacity: burst, ratePerSecond: bytesPerSecond)
        ))
    }

    public var counters: Counters { inner.withLock { $0.counters } }

    /// The publisher's init segment has arrived: its stream is valid WebM.
    public var isStreaming: Bool { inner.withLock { $0.initSegment != nil } }

    /// What one chunk from the publisher completed.
    public struct Received: Sendable {
        /// Fragments ready to produce (one, or none while an element is incomplete).
        public var fragments: [StreamFragment] = []
        /// The init segment became complete with this chunk: the stream is valid WebM from here.
        public var startedStream = false
    }

    /// Room in a record for everything but the WebM bytes: the key, the `kvb-*` headers (the init
    /// segment among them on join points) and Kafka's record and batch framing, with a margin.
    static func recordOverhead(initSegment: [UInt8]?) -> Int {
        1024 + (initSegment?.count ?? 0)
    }

    /// The smallest `max.message.bytes` a relay can work with: a record must hold the init
    /// segment and some media.
    static let minimumRecordBytes = 16 << 10

    /// Parses a chunk and returns the fragment it completed (all its whole elements, in one
    /// Kafka record, or in several when they would not fit in `maxRecordBytes`), ready to produce.
    /// Refuses a chunk that would take the publisher over its bitrate, and an init segment that
    /// leaves no room in a record.
    public func receive(_ chunk: some Collection<UInt8>, nowMilliseconds: Int64, maxRecordBytes: Int = .max) throws(RelayError) -> Received {
        try inner.withLock { (inner) throws(RelayError) -> Received in
            guard inner.bitrate.take(Double(chunk.count), nowMilliseconds: nowMilliseconds) else {
                let megabits = Double(limits.publishBitsPerSecond) / 1_000_000
                throw .limit(.publishBitrate, "publishing faster than this relay's \(megabits) Mbit/s limit (averaged over \(limits.publishBurstSeconds) s); lower the recorder's bitrate")
            }
            inner.counters.bytes += chunk.count
            let outputs: [WebMSegmenterOutput]
            do {
                outputs = try inner.segmenter.append(chunk)
            } catch let error as WebMError {
                switch error.kind {
                case .notWebM, .unsupportedDocType: throw .unsupportedMedia(error.description)
                case .initSegmentTooLarge: throw .limit(.initSegmentSize, error.description)
                case .elementTooLarge: throw .limit(.elementSize, error.description)
                case .invalidElement, .unexpectedElement, .missingTracks: throw .brokenStream(error.description)
                }
            } catch {
                throw .brokenStream("\(error)")
            }
            var received = Received()
            var piece = FragmentAssembly(sequence: inner.nextSequence, openCluster: inner.openCluster)
            for output in outputs {
                switch output {
                case .initSegment(let segment):
                    guard maxRecordBytes - Self.recordOverhead(initSegment: segment.bytes) >= Self.minimumRecordBytes / 2 else {
                        throw .limit(.initSegmentSize, "the init segment (\(segment.bytes.count) bytes) leaves no room for media in the topic's \(maxRecordBytes)-byte records (max.message.bytes)")
                    }
                    received.startedStream = inner.initSegment == nil
                    inner.initSegment = segment.bytes
                case .fragment(let fragment):
                    piece.add(fragment)
                }
            }
            guard !piece.bytes.isEmpty else {
                inner.openCluster = piece.openCluster
                return received
            }
            let (parts, openCluster) = piece.split(maxBytes: maxRecordBytes - Self.recordOverhead(initSegment: inner.initSegment))
            inner.openCluster = openCluster
            for part in parts {
                let join = part.joinAt != nil || part.joinFrom != nil
                inner.unacknowledged[UInt32(truncatingIfNeeded: inner.nextSequence)] = nowMilliseconds
                received.fragments.append(StreamFragment(
                    session: id, sequence: inner.nextSequence, ingestMilliseconds: nowMilliseconds, joinAt: part.joinAt,
                    initSegment: join ? inner.initSegment : nil, relay: relayID, bytes: Array(part.bytes),
                    joinFrom: part.joinFrom?.sequence, joinFromOffset: part.joinFrom?.offset ?? 0
                ))
                inner.nextSequence += 1
                inner.counters.fragments += 1
                if join { inner.counters.keyframes += 1 }
            }
            return received
        }
    }

    /// The publisher is gone: drop what the segmenter holds (an incomplete element can be
    /// megabytes). The session itself is kept a little longer for late delivery reports.
    func finish() {
        inner.withLock { inner in
            inner.segmenter = WebMSegmenter(maxElementSize: 0, maxInitSegmentSize: 0)
            inner.initSegment = nil
        }
    }

    /// A fragment that never reached Kafka (dropped before it was queued).
    func dropped(sequence: UInt32, reason: String) {
        inner.withLock { inner in
            inner.unacknowledged[sequence] = nil
            inner.counters.failed += 1
            inner.counters.lastDeliveryError = reason
        }
    }

    /// The end-of-session marker, produced when the publisher goes away.
    func endMarker(nowMilliseconds: Int64) -> StreamFragment {
        inner.withLock { inner in
            defer { inner.nextSequence += 1 }
            return StreamFragment(session: id, sequence: inner.nextSequence, ingestMilliseconds: nowMilliseconds,
                                  isKeyframe: false, initSegment: nil, relay: relayID, bytes: [], isEnd: true)
        }
    }

    /// Kafka reported the fragment with this (truncated) sequence number; returns its ingest time.
    func delivered(sequence: UInt32, error: String?) -> Int64? {
        inner.withLock { inner in
            let ingest = inner.unacknowledged.removeValue(forKey: sequence)
            if let error {
                inner.counters.failed += 1
                inner.counters.lastDeliveryError = error
            } else {
                inner.counters.acked += 1
            }
            return ingest
        }
    }

    /// The `stats` message for the publisher; `kafka` is the relay's view of Kafka when it is
    /// not reachable (the publisher stays connected and the relay retries).
    public func statsNotice(kafkaProblem: String? = nil) -> String {
        let c = counters
        return PublisherNotice.encode(PublisherNotice.Stats(
            bytes: c.bytes, fragments: c.fragments, keyframes: c.keyframes, acked: c.acked, failed: c.failed,
            kafkaError: c.lastDeliveryError, kafka: kafkaProblem.map { "unreachable: \($0)" } ?? "ok"
        ))
    }

    public var readyNotice: String {
        PublisherNotice.encode(PublisherNotice.Ready(topic: topic.value, session: id, relay: relayID))
    }
}

/// The segmenter's pieces from one chunk joined into one fragment: their bytes, and the join
/// point among them (pure logic).
///
/// One Kafka record and one WebSocket message per chunk, instead of one per element, cuts the
/// per-viewer cost of fan-out several times over; nothing is held back, so latency is unchanged.
/// A Cluster can now start inside a fragment, so join points are byte positions: `joinAt` in this
/// fragment, or `joinFrom` at an earlier one's Cluster start (when the chunk ended before that
/// Cluster's first video block).
struct FragmentAssembly {
    /// A byte of a fragment of the session.
    struct Position: Sendable, Equatable {
        var sequence: UInt64
        var offset: Int
    }

    let sequence: UInt64
    private(set) var bytes: [UInt8] = []
    /// The latest join point in `bytes`.
    private(set) var joinAt: Int?
    /// An earlier fragment's Cluster start that this one makes a join point.
    private(set) var joinFrom: Position?
    /// Where the newest Cluster opened.
    private(set) var openCluster: Position?

    init(sequence: UInt64, openCluster: Position?) {
        self.sequence = sequence
        self.openCluster = openCluster
    }

    /// An assembly already holding `bytes` (for tests of ``split(maxBytes:)``).
    init(sequence: UInt64, openCluster: Position?, bytes: [UInt8], joinAt: Int?, joinFrom: Position?) {
        self.init(sequence: sequence, openCluster: openCluster)
        self.bytes = bytes
        self.joinAt = joinAt
        self.joinFrom = joinFrom
    }

    /// One Kafka record's share of the assembled bytes.
    struct Part: Equatable {
        var bytes: ArraySlice<UInt8>
        var joinAt: Int?
        var joinFrom: Position?
    }

    /// The bytes cut into parts of at most `maxBytes` each, for records `sequence`, `sequence + 1`,
    /// …: a fragment larger than the topic accepts travels as several records, which viewers get
    /// as consecutive messages of the same byte stream. The join point lands in the part that holds
    /// its byte; a join point in an earlier fragment (`joinFrom`) is named by the last part, once
    /// all of this fragment's bytes are in; ``openCluster`` is given in the parts' terms.
    func split(maxBytes: Int) -> (parts: [Part], openCluster: Position?) {
        guard maxBytes > 0, bytes.count > maxBytes else {
            return ([Part(bytes: bytes[...], joinAt: joinAt, joinFrom: joinFrom)], openCluster)
        }
        var parts: [Part] = []
        var start = 0
        while start < bytes.count {
            let end = min(start + maxBytes, bytes.count)
            parts.append(Part(bytes: bytes[start..<end]))
            start = end
        }
        if let joinAt { parts[joinAt / maxBytes].joinAt = joinAt % maxBytes }
        parts[parts.count - 1].joinFrom = joinFrom
        var open = openCluster
        if let cluster = openCluster, cluster.sequence == sequence {
            open = Position(sequence: sequence + UInt64(cluster.offset / maxBytes), offset: cluster.offset % maxBytes)
        }
        return (parts, open)
    }

    mutating func add(_ fragment: WebMFragment) {
        let offset = bytes.count
        if fragment.startsCluster { openCluster = Position(sequence: sequence, offset: offset) }
        if fragment.isKeyframe {
            joinAt = offset
            joinFrom = nil
        } else if fragment.makesClusterAJoinPoint, let open = openCluster {
            if open.sequence == sequence {
                joinAt = open.offset
                joinFrom = nil
            } else {
                joinFrom = open
                joinAt = nil
            }
        }
        bytes.append(contentsOf: fragment.bytes)
    }
}

/// The JSON messages a publisher receives (docs/PROTOCOL.md).
enum PublisherNotice {
    struct Ready: Encodable {
        var type = "ready"
        var topic: String
        var session: String
        var relay: String
    }

    struct Stats: Encodable {
        var type = "stats"
        var bytes: Int
        var fragments: Int
        var keyframes: Int
        var acked: Int
        var failed: Int
        /// The latest delivery failure, if any.
        var kafkaError: String?
        /// `ok`, or `unreachable: REASON` while the relay cannot reach Kafka.
        var kafka: String
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? #"{"type":"error","message":"unencodable notice"}"#
    }
}
