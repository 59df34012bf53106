import ControlPlane
import NIOCore
import Testing
@testable import Relay

/// The pure halves of recordings: which bytes of a topic's records make a session's file, and the
/// list of sessions a topic holds.
@Suite("Recordings")
struct RecordingTests {
    func bytes(_ buffers: [ByteBuffer]) -> [UInt8] { buffers.flatMap { Array($0.readableBytesView) } }

    @Test func aRecordingStartsAtTheFirstJoinPointAndEndsWithTheSession() {
        var cut = RecordingCut(session: "s", endOffset: 100)
        #expect(cut.take(Fragments.delta("s", 0), offset: 10).isEmpty, "no join point yet")
        #expect(cut.take(Fragments.key("other", 0), offset: 11).isEmpty, "another session's record")
        #expect(bytes(cut.take(Fragments.keyAt("s", 1, at: 4), offset: 12)) == [4, 5, 6, 7, 8, 9])
        #expect(cut.start?.offset == 12 && cut.start?.byte == 4)
        #expect(cut.initSegment == Fragments.initSegment)
        #expect(bytes(cut.take(Fragments.delta("s", 2, size: 3), offset: 13)) == [2, 2, 2])
        #expect(cut.take(nil, offset: 14).isEmpty, "a record that is not a fragment")
        #expect(cut.take(Fragments.end("s", 3), offset: 15).isEmpty)
        #expect(cut.finished)
        #expect(cut.take(Fragments.delta("s", 4), offset: 16).isEmpty, "nothing after the end")
    }

    @Test func aClusterThatBecomesAJoinPointLaterStartsWhereItOpened() {
        var cut = RecordingCut(session: "s", endOffset: 100)
        _ = cut.take(Fragments.delta("s", 0, size: 2), offset: 0)
        _ = cut.take(Fragments.delta("s", 1, size: 2), offset: 1)
        _ = cut.take(Fragments.delta("s", 2, size: 2), offset: 2)
        let out = bytes(cut.take(Fragments.joining("s", 3, from: 1, size: 2), offset: 3))
        #expect(out == [1, 1, 2, 2, 3, 3])
        #expect(cut.start?.offset == 1 && cut.start?.byte == 0)
    }

    @Test func aRecordingStopsAtItsEndOffset() {
        var cut = RecordingCut(session: "s", endOffset: 2)
        #expect(!cut.take(Fragments.key("s", 0), offset: 0).isEmpty)
        #expect(!cut.take(Fragments.delta("s", 1), offset: 1).isEmpty)
        #expect(cut.take(Fragments.delta("s", 2), offset: 2).isEmpty)
        #expect(cut.finished)
    }

    @Test func sessionsAreListedInOrderWithTheirExtent() {
        var index = SessionIndex()
        for seq in 0..<40 { index.add(Fragments.delta("a", UInt64(seq), size: 100), offset: Int64(seq), size: 100) }
        index.add(Fragments.end("a", 40), offset: 40, size: 0)
        index.add(nil, offset: 41, size: 7)
        for seq in 0..<5 { index.add(Fragments.delta("b", UInt64(seq), size: 10), offset: Int64(42 + seq), size: 10) }
        #expect(index.nextOffset == 47)
        let sessions = index.sessions
        #expect(sessions.map(\.id) == ["a", "b"])
        #expect(sessions[0].bytes == 4000 && sessions[0].records == 41 && sessions[0].ended && sessions[0].complete)
        #expect(sessions[0].firstOffset == 0 && sessions[0].lastOffset == 40)
        #expect(sessions[0].durationMilliseconds == 40)
        #expect(!sessions[1].ended && sessions[1].bytes == 50)
    }

    @Test func retentionCuttingIntoASessionLeavesWhatRemains() {
        var index = SessionIndex()
        for seq in 0..<64 { index.add(Fragments.delta("a", UInt64(seq), size: 100), offset: Int64(seq), size: 100) }
        for seq in 0..<8 { index.add(Fragments.delta("b", UInt64(seq), size: 10), offset: Int64(64 + seq), size: 10) }
        index.retain(from: 20)
        let a = index.sessions[0]
        #expect(!a.complete)
        #expect(a.firstOffset == 32, "the first checkpoint kept (every 16 records)")
        #expect(a.records == 32 && a.bytes == 3200 && a.startedAtMilliseconds == 32)
        index.retain(from: 64)
        #expect(index.sessions.map(\.id) == ["b"])
        #expect(index.sessions[0].complete)
    }

    @Test func aLongSessionKeepsBoundedCheckpointsAndRightFigures() {
        var index = SessionIndex()
        let records = Int64(SessionIndex.maxCheckpoints) * SessionIndex.checkpointEvery * 4  // four doublings' worth
        for seq in 0..<records { index.add(Fragments.delta("a", UInt64(seq), size: 10), offset: seq, size: 10) }
        #expect(index.sessions[0].records == records && index.sessions[0].bytes == records * 10)
        #expect(index.checkpointCounts.allSatisfy { $0 <= SessionIndex.maxCheckpoints && $0 > SessionIndex.maxCheckpoints / 4 },
                "\(index.checkpointCounts)")
        // Retention takes the first half: what is left is right to within the stride reached.
        index.retain(from: records / 2)
        let left = index.sessions[0]
        #expect(left.firstOffset >= records / 2 && left.firstOffset - records / 2 <= SessionIndex.checkpointEvery * 8)
        #expect(left.records == records - left.firstOffset && left.bytes == left.records * 10)

        // Retention that passes every checkpoint (nothing listed it meanwhile) leaves figures off
        // by less than one stride, not the whole session's.
        var short = SessionIndex()
        for seq in 0..<40 { short.add(Fragments.delta("b", UInt64(seq), size: 10), offset: Int64(seq), size: 10) }
        short.retain(from: 39)
        let tail = short.sessions[0]
        #expect(tail.firstOffset == 39 && !tail.complete)
        #expect(tail.records == 40 - 32 && tail.startedAtMilliseconds == 32, "from the last checkpoint before the cut (record 32)")
    }

    @Test func aTopicOfOtherRecordsIsForeignAfterAFew() {
        var other = SessionIndex()
        for offset in 0..<(SessionIndex.foreignAfter - 1) { other.add(nil, offset: offset, size: 10) }
        #expect(!other.isForeign, "too few records to say")
        other.add(nil, offset: SessionIndex.foreignAfter, size: 10)
        #expect(other.isForeign)

        var mixed = SessionIndex()
        mixed.add(Fragments.delta("a", 0), offset: 0, size: 10)
        for offset in 1...40 { mixed.add(nil, offset: Int64(offset), size: 10) }
        #expect(!mixed.isForeign, "a stream topic with stray records is still a stream topic")
    }

    @Test func theRecordingListIsNewestFirstAcrossTopics() {
        func session(_ id: String, at start: Int64) -> RecordedSession {
            RecordedSession(id: id, relay: "r", startedAtMilliseconds: start, endedAtMilliseconds: start + 10, bytes: 1,
                            records: 1, firstOffset: 0, lastOffset: 0, ended: true, complete: true)
        }
        let sessions = ["x": [session("x1", at: 100), session("x2", at: 300)], "y": [session("y1", at: 200), session("y2", at: 300)]]
        let list = RecordingList(sessions: sessions, limit: 3, pendingTopics: ["z", "a"], madeAtMilliseconds: 5)
        #expect(list.recordings.map(\.session.id) == ["x2", "y2", "y1"], "ties by topic")
        #expect(list.recordings.map(\.topic) == ["x", "y", "y"])
        #expect(list.total == 4 && list.topics == 2 && list.pendingTopics == ["a", "z"])
        #expect(RecordingList(sessions: sessions, limit: 0, pendingTopics: [], madeAtMilliseconds: 5).recordings.isEmpty)
        #expect(RecordingCatalog.streamTopics(["b", "kvb.status", "a", "__bad", "kvb.control"]).map(\.value) == ["a", "b"])
        // Times are anyone's (record headers): extremes saturate rather than trap.
        let absurd = RecordedSession(id: "x", relay: "r", startedAtMilliseconds: .min, endedAtMilliseconds: .max, bytes: 1,
                                     records: 1, firstOffset: 0, lastOffset: 0, ended: true, complete: true)
        #expect(absurd.durationMilliseconds == .max)
    }
}

@Suite("HTTP byte ranges")
struct ByteRangeTests {
    @Test(arguments: [
        ("bytes=0-99", ByteRange.partial(0...99)),
        ("bytes=100-", .partial(100...999)),
        ("bytes=-100", .partial(900...999)),
        ("bytes=-5000", .partial(0...999)),
        ("bytes=990-5000", .partial(990...999)),
        ("bytes= 5 - 9 ", .partial(5...9)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=9-5", .whole),
        ("bytes=0-1,5-9", .whole),
        ("items=0-9", .whole),
        ("bytes=x-9", .whole),
        ("bytes=-", .whole),
    ])
    func rangesResolveAgainstTheLength(header: String, expected: ByteRange) {
        #expect(ByteRange(header: header, length: 1000) == expected)
    }

    @Test func noHeaderOrNothingToSendIsTheWhole() {
        #expect(ByteRange(header: nil, length: 1000) == .whole)
        #expect(ByteRange(header: "bytes=0-9", length: 0) == .whole)
    }
}

@Suite("Time search over record times")
struct TimeSearchTests {
    /// Runs a search over `times` (the record at offset `low + i` has `times[i]`, nil: no record there).
    func search(_ target: Int64, _ times: [Int64?], low: Int64 = 0) -> (Int64, Int) {
        var search = TimeSearch(milliseconds: target, low: low, high: low + Int64(times.count))
        while true {
            switch search.next {
            case .found(let offset): return (offset, search.reads)
            case .read(let asked):
                let index = Int(asked - low)
                let hit = times[index...].firstIndex { $0 != nil }
                search.saw(asked: asked, offset: hit.map { low + Int64($0) }, milliseconds: hit.flatMap { times[$0] })
            }
        }
    }

    @Test func findsTheFirstRecordAtOrAfterTheTime() {
        let times: [Int64?] = (0..<1000).map { Int64(1_000 + $0 * 70) }  // 14 records a second
        #expect(search(1_000, times).0 == 0)
        #expect(search(999, times).0 == 0)
        #expect(search(1_070, times).0 == 1)
        #expect(search(1_071, times).0 == 2)
        #expect(search(40_000, times).0 == 558)
        #expect(search(1_000_000, times).0 == 1000, "every record is older: the high watermark")
        #expect(search(40_000, times).1 <= 11, "log2(1000) reads")
    }

    @Test func offsetsNeedNotStartAtZeroAndRecordsCanBeMissing() {
        var times: [Int64?] = (0..<200).map { Int64($0 * 10) }
        for gap in [50, 51, 52, 53, 120] { times[gap] = nil }
        // Reading from the answer gives the first record at or after the time first: 5,054 here,
        // so any offset of the gap before it will do.
        #expect((5_050...5_054).contains(search(505, times, low: 5_000).0))
        #expect((5_120...5_121).contains(search(1_195, times, low: 5_000).0))
        #expect(search(0, [], low: 7).0 == 7)
    }

    @Test func timesOutOfOrderStillEndWithinBoundedReads() {
        var generator = SystemRandomNumberGenerator()
        let times: [Int64?] = (0..<10_000).map { _ in Int64.random(in: 0..<1_000_000, using: &generator) }
        let (offset, reads) = search(500_000, times)
        #expect((0...10_000).contains(offset))
        #expect(reads <= TimeSearch.maxReads)
    }
}

@Suite("Times in recording URLs")
struct RecordingTimeTests {
    let now: Int64 = 1_796_523_481_721

    @Test func relativeTimesCountBackFromNow() {
        #expect(RecordingTime.parse("-30s", nowMilliseconds: now) == now - 30_000)
        #expect(RecordingTime.parse("-1.5s", nowMilliseconds: now) == now - 1_500)
        #expect(RecordingTime.parse("-2m", nowMilliseconds: now) == now - 120_000)
        #expect(RecordingTime.parse("-1h", nowMilliseconds: now) == now - 3_600_000)
        #expect(RecordingTime.parse("-250ms", nowMilliseconds: now) == now - 250)
    }

    @Test func absoluteTimes() {
        #expect(RecordingTime.parse("1796523481721", nowMilliseconds: now) == 1_796_523_481_721)
        #expect(RecordingTime.parse("2026-12-06T02:30:00Z", nowMilliseconds: now) == 1_796_524_200_000)
        #expect(RecordingTime.parse("2026-12-06T02:30:00.250Z", nowMilliseconds: now) == 1_796_524_200_250)
        #expect(RecordingTime.parse("2026-12-06T03:30:00+01:00", nowMilliseconds: now) == 1_796_524_200_000)
    }

    @Test(arguments: ["", "-", "-30", "-xs", "soon", "2026-13-45T99:00:00Z", "-1e300s", "12ab"])
    func notATime(_ text: String) {
        #expect(RecordingTime.parse(text, nowMilliseconds: now) == nil)
    }
}
