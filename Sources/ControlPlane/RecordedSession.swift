/// One publisher session of a topic that Kafka still holds, as `GET /api/topics/T/sessions`
/// lists it: a recording anyone can download or rewind into.
public struct RecordedSession: Sendable, Equatable, Codable {
    /// The session id (`kvb-session`).
    public var id: String
    /// The relay its publisher streamed through.
    public var relay: String
    /// When the relay received its first and latest retained chunks (ms since the Unix epoch).
    public var startedAtMilliseconds: Int64
    public var endedAtMilliseconds: Int64
    public var durationMilliseconds: Int64 { max(0, endedAtMilliseconds.saturatingSubtract(startedAtMilliseconds)) }
    /// Media bytes retained.
    public var bytes: Int64
    /// Records retained, and the offsets of the first and last.
    public var records: Int64
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The publisher ended it (the end-of-session marker is in Kafka); false while it streams, or
    /// when its relay went away without saying so.
    public var ended: Bool
    /// Its beginning is still retained; false when retention has cut its first part away (a
    /// download then starts at the first keyframe kept).
    public var complete: Bool

    private enum CodingKeys: String, CodingKey {
        case id, relay, startedAtMilliseconds, endedAtMilliseconds, durationMilliseconds, bytes, records, firstOffset,
             lastOffset, ended, complete
    }

    public init(id: String, relay: String, startedAtMilliseconds: Int64, endedAtMilliseconds: Int64, bytes: Int64,
                records: Int64, firstOffset: Int64, lastOffset: Int64, ended: Bool, complete: Bool) {
        self.id = id
        self.relay = relay
        self.startedAtMilliseconds = startedAtMilliseconds
        self.endedAtMilliseconds = endedAtMilliseconds
        self.bytes = bytes
        self.records = records
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.ended = ended
        self.complete = complete
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), relay: try c.decode(String.self, forKey: .relay),
                  startedAtMilliseconds: try c.decode(Int64.self, forKey: .startedAtMilliseconds),
                  endedAtMilliseconds: try c.decode(Int64.self, forKey: .endedAtMilliseconds),
                  bytes: try c.decode(Int64.self, forKey: .bytes), records: try c.decode(Int64.self, forKey: .records),
                  firstOffset: try c.decode(Int64.self, forKey: .firstOffset), lastOffset: try c.decode(Int64.self, forKey: .lastOffset),
                  ended: try c.decode(Bool.self, forKey: .ended), complete: try c.decode(Bool.self, forKey: .complete))
    }

    /// Encodes `durationMilliseconds` too, so readers of the JSON need not do the arithmetic.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(relay, forKey: .relay)
        try c.encode(startedAtMilliseconds, forKey: .startedAtMilliseconds)
        try c.encode(endedAtMilliseconds, forKey: .endedAtMilliseconds)
        try c.encode(durationMilliseconds, forKey: .durationMilliseconds)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(records, forKey: .records)
        try c.encode(firstOffset, forKey: .firstOffset)
        try c.encode(lastOffset, forKey: .lastOffset)
        try c.encode(ended, forKey: .ended)
        try c.encode(complete, forKey: .complete)
    }
}
