import Kafka
import NIOCore

/// One fragment of a live stream as it travels through Kafka: the WebM bytes plus everything a
/// relay needs to serve it with no other state (the `kvb-*` headers in docs/PROTOCOL.md).
public struct StreamFragment: Sendable, Equatable {
    public var session: String
    public var sequence: UInt64
    /// When the relay received the chunk that completed this fragment (ms since the Unix epoch).
    public var ingestMilliseconds: Int64
    public var isKeyframe: Bool
    /// The init segment; carried on every keyframe fragment, and with `joinFrom`.
    public var initSegment: [UInt8]?
    /// This fragment holds the keyframe that makes the Cluster opened by fragment `joinFrom` (an
    /// earlier sequence number of the session) a join point: viewers can start there.
    public var joinFrom: UInt64?
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

    public init(session: String, sequence: UInt64, ingestMilliseconds: Int64, isKeyframe: Bool, initSegment: [UInt8]?,
                relay: String, bytes: [UInt8], isEnd: Bool = false, offset: Int64? = nil, joinFrom: UInt64? = nil) {
        self.session = session
        self.sequence = sequence
        self.ingestMilliseconds = ingestMilliseconds
        self.isKeyframe = isKeyframe
        self.initSegment = initSegment
        self.relay = relay
        self.payload = ByteBuffer(bytes: bytes)
        self.isEnd = isEnd
        self.offset = offset
        self.joinFrom = joinFrom
    }

    enum Header {
        static let session = "kvb-session"
        static let sequence = "kvb-seq"
        static let ingest = "kvb-ingest-ms"
        static let keyframe = "kvb-keyframe"
        static let initSegment = "kvb-init"
        static let relay = "kvb-relay"
        static let end = "kvb-end"
        static let joinFrom = "kvb-join-from"
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
        if let initSegment, isKeyframe || joinFrom != nil { headers.append(KafkaHeader(Header.initSegment, initSegment)) }
        if let joinFrom { headers.append(KafkaHeader(Header.joinFrom, string: String(joinFrom))) }
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
        let joinFrom = text(Header.joinFrom).flatMap(UInt64.init)
        if text(Header.joinFrom) != nil && (joinFrom == nil || initSegment == nil) { return nil }
        if isKeyframe && initSegment == nil { return nil }
        self.init(
            session: session, sequence: sequence, ingestMilliseconds: ingest, isKeyframe: isKeyframe,
            initSegment: initSegment, relay: text(Header.relay) ?? "", bytes: message.value,
            isEnd: text(Header.end) == "1", offset: message.offset, joinFrom: joinFrom
        )
    }
}
