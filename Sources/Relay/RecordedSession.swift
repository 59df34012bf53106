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
    public var durationMilliseconds: Int64 { max(0, endedAtMilliseconds - startedAtMilliseconds) }
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

/// The sessions of one topic, built from its records in offset order. Pure: the archive feeds
/// it what it reads from Kafka and asks it again later from where it stopped.
struct SessionIndex: Sendable, Equatable {
    private struct Entry: Sendable, Equatable {
        var session: RecordedSession
        /// Every ``checkpointEvery``-th record: its offset and time, and the bytes and records
        /// before it, so that retention cutting into the session leaves figures that are right to
        /// within that many records.
        var checkpoints: [(offset: Int64, milliseconds: Int64, bytes: Int64, records: Int64)] = []

        static func == (a: Entry, b: Entry) -> Bool {
            a.session == b.session && a.checkpoints.elementsEqual(b.checkpoints) { $0 == $1 }
        }
    }

    private var entries: [Entry] = []
    /// The offset after the last record seen: where the next scan goes on.
    private(set) var nextOffset: Int64 = 0

    /// Sessions kept per topic (the oldest go first), and how often a checkpoint is kept.
    static let maxSessions = 1_000
    static let checkpointEvery: Int64 = 16

    /// Sessions in the order they started.
    var sessions: [RecordedSession] { entries.map(\.session) }

    /// Takes the next record (`fragment` nil: a record that is not a kvb fragment).
    mutating func add(_ fragment: StreamFragment?, offset: Int64, size: Int) {
        nextOffset = max(nextOffset, offset + 1)
        guard let fragment else { return }
        // Sessions of one topic follow each other; a late record of an earlier one (a relay that
        // lost its publisher) still counts for it.
        guard let i = entries.lastIndex(where: { $0.session.id == fragment.session }) else {
            entries.append(Entry(session: RecordedSession(
                id: fragment.session, relay: fragment.relay, startedAtMilliseconds: fragment.ingestMilliseconds,
                endedAtMilliseconds: fragment.ingestMilliseconds, bytes: Int64(size), records: 1, firstOffset: offset,
                lastOffset: offset, ended: fragment.isEnd, complete: fragment.sequence == 0)))
            if entries.count > Self.maxSessions { entries.removeFirst(entries.count - Self.maxSessions) }
            return
        }
        var session = entries[i].session
        if session.records % Self.checkpointEvery == 0 {
            entries[i].checkpoints.append((offset, fragment.ingestMilliseconds, session.bytes, session.records))
        }
        session.endedAtMilliseconds = max(session.endedAtMilliseconds, fragment.ingestMilliseconds)
        session.bytes += Int64(size)
        session.records += 1
        session.lastOffset = max(session.lastOffset, offset)
        if fragment.isEnd { session.ended = true }
        entries[i].session = session
    }

    /// Retention removed everything before `low`: sessions wholly before it go, and a session it
    /// cuts into starts at its first checkpoint kept and is no longer complete.
    mutating func retain(from low: Int64) {
        entries.removeAll { $0.session.lastOffset < low }
        for i in entries.indices where entries[i].session.firstOffset < low {
            entries[i].checkpoints.removeAll { $0.offset < low }
            guard let kept = entries[i].checkpoints.first else {
                entries[i].session.firstOffset = low
                entries[i].session.complete = false
                continue
            }
            entries[i].session.firstOffset = kept.offset
            entries[i].session.startedAtMilliseconds = kept.milliseconds
            entries[i].session.bytes -= kept.bytes
            entries[i].session.records -= kept.records
            entries[i].session.complete = false
            entries[i].checkpoints = entries[i].checkpoints.map {
                ($0.offset, $0.milliseconds, $0.bytes - kept.bytes, $0.records - kept.records)
            }
        }
        nextOffset = max(nextOffset, low)
    }
}
