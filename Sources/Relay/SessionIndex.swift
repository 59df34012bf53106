import ControlPlane

/// The sessions of one topic, built from its records in offset order. Pure: the archive feeds
/// it what it reads from Kafka and asks it again later from where it stopped.
struct SessionIndex: Sendable, Equatable {
    private struct Entry: Sendable, Equatable {
        var session: RecordedSession
        /// Every `stride`-th record: its offset and time, and the bytes and records
        /// before it, so that retention cutting into the session leaves figures that are right to
        /// within that many records.
        var checkpoints: [(offset: Int64, milliseconds: Int64, bytes: Int64, records: Int64)] = []
        /// Records between checkpoints: ``checkpointEvery``, doubled each time a long session
        /// reaches ``maxCheckpoints`` (every other one is dropped then).
        var stride = SessionIndex.checkpointEvery

        static func == (a: Entry, b: Entry) -> Bool {
            a.session == b.session && a.stride == b.stride && a.checkpoints.elementsEqual(b.checkpoints) { $0 == $1 }
        }
    }

    private var entries: [Entry] = []
    /// The offset after the last record seen: where the next scan goes on.
    private(set) var nextOffset: Int64 = 0
    /// Records seen that are kvb fragments, and that are not (another application's topic).
    private(set) var streamRecords: Int64 = 0
    private(set) var otherRecords: Int64 = 0

    /// Sessions kept per topic (the oldest go first), and how often a checkpoint is kept at first.
    static let maxSessions = 1_000
    static let checkpointEvery: Int64 = 16
    /// Checkpoints kept per session at most (a day of a stream is over a million records).
    static let maxCheckpoints = 1_024

    /// Records that are not kvb's seen before the topic counts as another application's.
    static let foreignAfter: Int64 = 16

    /// Whether the topic holds another application's records rather than kvb streams: only such
    /// records seen, at least ``foreignAfter`` of them.
    var isForeign: Bool { streamRecords == 0 && otherRecords >= Self.foreignAfter }

    /// Checkpoints kept per session (for tests).
    var checkpointCounts: [Int] { entries.map(\.checkpoints.count) }

    /// Sessions in the order they started.
    var sessions: [RecordedSession] { entries.map(\.session) }

    /// Takes the next record (`fragment` nil: a record that is not a kvb fragment).
    mutating func add(_ fragment: StreamFragment?, offset: Int64, size: Int) {
        nextOffset = max(nextOffset, offset + 1)
        guard let fragment else {
            otherRecords += 1
            return
        }
        streamRecords += 1
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
        if session.records % entries[i].stride == 0 {
            entries[i].checkpoints.append((offset, fragment.ingestMilliseconds, session.bytes, session.records))
            if entries[i].checkpoints.count > Self.maxCheckpoints {
                let kept = entries[i].checkpoints
                entries[i].checkpoints = stride(from: 0, to: kept.count, by: 2).map { kept[$0] }
                entries[i].stride *= 2
            }
        }
        session.endedAtMilliseconds = max(session.endedAtMilliseconds, fragment.ingestMilliseconds)
        session.bytes += Int64(size)
        session.records += 1
        session.lastOffset = max(session.lastOffset, offset)
        if fragment.isEnd { session.ended = true }
        entries[i].session = session
    }

    /// Retention removed everything before `low`: sessions wholly before it go, and a session it
    /// cuts into starts at its first checkpoint kept (or, past them all, at `low` with the figures
    /// of the last checkpoint before it) and is no longer complete.
    mutating func retain(from low: Int64) {
        entries.removeAll { $0.session.lastOffset < low }
        for i in entries.indices where entries[i].session.firstOffset < low {
            let before = entries[i].checkpoints.last { $0.offset < low }
            entries[i].checkpoints.removeAll { $0.offset < low }
            entries[i].session.complete = false
            // From the first checkpoint kept; when retention has passed them all, from the last
            // one before `low` (the figures then count less than one stride too many).
            guard let base = entries[i].checkpoints.first ?? before else {
                entries[i].session.firstOffset = low
                continue
            }
            entries[i].session.firstOffset = max(base.offset, low)
            entries[i].session.startedAtMilliseconds = base.milliseconds
            entries[i].session.bytes -= base.bytes
            entries[i].session.records -= base.records
            entries[i].checkpoints = entries[i].checkpoints.map {
                ($0.offset, $0.milliseconds, $0.bytes - base.bytes, $0.records - base.records)
            }
        }
        nextOffset = max(nextOffset, low)
    }
}
