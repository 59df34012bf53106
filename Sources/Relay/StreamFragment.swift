import Kafka
import NIOCore

/// One fragment of a live stream as it travels through Kafka: the WebM bytes plus everything a
/// relay needs to serve it with no other state (the `kvb-*` headers in docs/PROTOCOL.md).
///
/// A fragment is what one publisher chunk completed: whole WebM elements, possibly ending one
/// Cluster and starting the next. A viewer can start at a join point (a Cluster whose first video
/// block is a keyframe): at `joinAt` in this fragment, or at the Cluster start that `joinFrom`
/// names in an earlier one.
public struct StreamFragment: Sendable, Equatable {
    public var session: String
    public var sequence: UInt64
    /// When the relay received the chunk that completed this fragment (ms since the Unix epoch).
    public var ingestMilliseconds: Int64
    /// Where in the bytes a join point starts (the latest, if several), or nil.
    public var joinAt: Int?
    /// The fragment opens with a join point: a viewer can start with its first byte.
    public var isKeyframe: Bool { joinAt == 0 }
    /// The init segment; carried with every join point (`joinAt` or `joinFrom`).
    public var initSegment: [UInt8]?
    /// This fragment holds the keyframe that makes the Cluster opened in fragment `joinFrom` (an
    /// earlier sequence number of the session), at byte `joinFromOffset` of it, a join point:
    /// viewers can start there.
    public var joinFrom: UInt64?
    public var joinFromOffset: Int
    public var relay: String
    /// The WebM bytes, in the buffer every viewer's socket is given (made once per fragment).
    public var payload: ByteBuffer
    /// The WebM bytes as an array (a copy).
    public var bytes: [UInt8] {
        get { Array(payload.readableBytesView) }
        set { payload = ByteBuffer(bytes: newValue) }
    }
    /// The end-of-session marker (no bytes).
    public var isEnd: Bool
    /// The Kafka offset, once consumed.
    public var offset: Int64?

    /// `isKeyframe`: the fragment opens with a join point (`joinAt` 0); `joinAt` names one further in.
    public init(session: String, sequence: UInt64, ingestMilliseconds: Int64, isKeyframe: Bool = false, joinAt: Int? = nil,
                initSegment: [UInt8]?, relay: String, bytes: [UInt8], isEnd: Bool = false, offset: Int64? = nil,
                joinFrom: UInt64? = nil, joinFromOffset: Int = 0) {
        self.session = session
        self.sequence = sequence
        self.ingestMilliseconds = ingestMilliseconds
        self.joinAt = joinAt ?? (isKeyframe ? 0 : nil)
        self.initSegment = initSegment
        self.relay = relay
        self.payload = ByteBuffer(bytes: bytes)
        self.isEnd = isEnd
        self.offset = offset
        self.joinFrom = joinFrom
        self.joinFromOffset = joinFromOffset
    }

    /// The fragment from byte `start` on, opening with a join point: where a viewer starting at
    /// that Cluster begins. The bytes are shared, not copied. Nil when `start` is out of range.
    public func joining(at start: Int) -> StreamFragment? {
        guard start >= 0, start < payload.readableBytes, let initSegment,
              let tail = payload.getSlice(at: payload.readerIndex + start, length: payload.readableBytes - start)
        else { return nil }
        var joined = self
        joined.payload = tail
        joined.joinAt = 0
        joined.initSegment = initSegment
        return joined
    }

    enum Header {
        static let session = "kvb-session"
        static let sequence = "kvb-seq"
        static let ingest = "kvb-ingest-ms"
        static let keyframe = "kvb-keyframe"
        static let initSegment = "kvb-init"
        static let relay = "kvb-relay"
        static let end = "kvb-end"
        static let joinAt = "kvb-join-at"
        static let joinFrom = "kvb-join-from"
        static let joinFromOffset = "kvb-join-from-offset"
    }

    /// The Kafka record for this fragment, on partition 0, keyed by the topic.
    public func kafkaMessage(topic: TopicName) -> KafkaOutgoingMessage {
        var headers = [
            KafkaHeader(Header.session, string: session),
            KafkaHeader(Header.sequence, string: String(sequence)),
            KafkaHeader(Header.ingest, string: String(ingestMilliseconds)),
            KafkaHeader(Header.keyframe, string: isKeyframe ? "1" : "0"),
            KafkaHeader(Header.relay, string: relay),
        ]
        if let initSegment, joinAt != nil || joinFrom != nil { headers.append(KafkaHeader(Header.initSegment, initSegment)) }
        if let joinAt, joinAt > 0 { headers.append(KafkaHeader(Header.joinAt, string: String(joinAt))) }
        if let joinFrom {
            headers.append(KafkaHeader(Header.joinFrom, string: String(joinFrom)))
            if joinFromOffset > 0 { headers.append(KafkaHeader(Header.joinFromOffset, string: String(joinFromOffset))) }
        }
        if isEnd { headers.append(KafkaHeader(Header.end, string: "1")) }
        return KafkaOutgoingMessage(topic: topic.value, partition: 0, key: Array(topic.value.utf8), value: bytes, headers: headers)
    }

    /// Reads a consumed record; nil when it is not a kvb fragment (missing or malformed headers).
    public init?(_ message: KafkaMessage) {
        func text(_ name: String) -> String? { message.header(name).map { String(decoding: $0, as: UTF8.self) } }
        guard let session = text(Header.session), !session.isEmpty,
              let sequence = text(Header.sequence).flatMap(UInt64.init),
              let ingest = text(Header.ingest).flatMap(Int64.init)
        else { return nil }
        let isKeyframe = text(Header.keyframe) == "1"
        let initSegment = message.header(Header.initSegment)
        // Offsets must fall inside the bytes they point into (the Cluster start's own fragment
        // for `kvb-join-from-offset`, checked when it is looked up).
        var joinAt: Int? = isKeyframe ? 0 : nil
        if let text = text(Header.joinAt) {
            guard !isKeyframe, let at = Int(text), at > 0, at < message.value.count else { return nil }
            joinAt = at
        }
        let joinFrom = text(Header.joinFrom).flatMap(UInt64.init)
        if text(Header.joinFrom) != nil && joinFrom == nil { return nil }
        var joinFromOffset = 0
        if let text = text(Header.joinFromOffset) {
            guard joinFrom != nil, let offset = Int(text), offset >= 0 else { return nil }
            joinFromOffset = offset
        }
        if (joinAt != nil || joinFrom != nil) && initSegment == nil { return nil }
        self.init(
            session: session, sequence: sequence, ingestMilliseconds: ingest, joinAt: joinAt,
            initSegment: initSegment, relay: text(Header.relay) ?? "", bytes: message.value,
            isEnd: text(Header.end) == "1", offset: message.offset, joinFrom: joinFrom, joinFromOffset: joinFromOffset
        )
    }
}
