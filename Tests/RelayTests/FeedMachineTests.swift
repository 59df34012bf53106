import Testing
@testable import Relay

@Suite("A feed's logic without sockets: reading back, joining, pausing, holes")
struct FeedMachineTests {
    static func machine(paused: Bool = false, window: Int64 = 10, maxWindow: Int64 = 200) -> FeedMachine {
        FeedMachine(cacheBytes: 10_000, window: window, maxWindow: maxWindow, staleMilliseconds: 10_000, paused: paused)
    }

    /// The sequence numbers of a join's fragments, or nil for "wait".
    static func sequences(_ join: FeedMachine.Join?) -> [UInt64]? {
        guard case .start(let fragments)? = join else { return nil }
        return fragments.map(\.sequence)
    }

    @Test func readsBackToTheLatestJoinPointBeforeAnyViewerGetsAByte() {
        var feed = Self.machine()
        let (from, join) = feed.watermarks(low: 0, high: 100, nowMilliseconds: 0)
        #expect(from == 90 && join == nil)
        #expect(feed.viewerAdded(nowMilliseconds: 0) == .later)
        for fragment in [Fragments.delta("a", 1), Fragments.key("a", 2), Fragments.delta("a", 3)] {
            #expect(feed.consumed(fragment) == .keep, "nothing is offered while reading back")
        }
        guard case .caughtUp(let join) = feed.reachedEnd(at: 100, nowMilliseconds: 5) else {
            Issue.record("expected to be caught up")
            return
        }
        #expect(Self.sequences(join) == [2, 3])
        #expect(!feed.catchingUp)
        // Live from here: each fragment is offered.
        #expect(feed.consumed(Fragments.delta("a", 4)) == .offer(Fragments.delta("a", 4), joinGroup: [], restartFirst: false))
        #expect(feed.newestConsumedIngest == 4)
    }

    @Test func withoutAJoinPointItReadsBackFurtherUntilTheWindowLimit() {
        var feed = Self.machine(window: 10, maxWindow: 100)
        _ = feed.watermarks(low: 0, high: 1_000, nowMilliseconds: 0)
        _ = feed.consumed(Fragments.delta("a", 1))
        #expect(feed.reachedEnd(at: 1_000, nowMilliseconds: 0) == .readBack(from: 960))
        #expect(feed.reachedEnd(at: 1_000, nowMilliseconds: 0) == .readBack(from: 840))
        // The window (160) is past its limit: give up reading back, viewers wait.
        #expect(feed.reachedEnd(at: 1_000, nowMilliseconds: 0) == .caughtUp(.wait))
        #expect(feed.reachedEnd(at: 1_000, nowMilliseconds: 0) == .nothing)
    }

    @Test func anEmptyOrMissingTopicStartsViewersAtOnce() {
        var empty = Self.machine()
        let (from, join) = empty.watermarks(low: 7, high: 7, nowMilliseconds: 0)
        #expect(from == 7 && join == .wait)
        var missing = Self.machine()
        #expect(missing.topicMissing(nowMilliseconds: 0) == .wait)
        // Once it exists it is read from its first record: all of it is new.
        let (first, again) = missing.watermarks(low: 0, high: 50, nowMilliseconds: 0)
        #expect(first == 0 && again == nil)
        #expect(missing.consumed(Fragments.key("a", 0)) == .offer(Fragments.key("a", 0), joinGroup: [], restartFirst: false))
    }

    @Test func aHoleInTheStreamRestartsViewersAtAJoinPoint() {
        var feed = Self.machine()
        _ = feed.topicMissing(nowMilliseconds: 0)
        _ = feed.consumed(Fragments.key("a", 0))
        _ = feed.consumed(Fragments.delta("a", 1))
        #expect(feed.consumed(Fragments.delta("a", 3)) == .offer(Fragments.delta("a", 3), joinGroup: [], restartFirst: true))
        // A keyframe after a hole needs no restart: it starts a Cluster.
        #expect(feed.consumed(Fragments.key("a", 9)) == .offer(Fragments.key("a", 9), joinGroup: [], restartFirst: false))
        // A join point inside a fragment does: the bytes before it belong to a lost Cluster.
        let inside = Fragments.keyAt("a", 12, at: 4)
        #expect(feed.consumed(inside) == .offer(inside, joinGroup: [], restartFirst: true))
        // A new session is no hole.
        #expect(feed.consumed(Fragments.delta("b", 5)) == .offer(Fragments.delta("b", 5), joinGroup: [], restartFirst: false))
    }

    @Test func aFragmentThatMakesAJoinPointCarriesTheGroupForWaitingViewers() {
        var feed = Self.machine()
        _ = feed.topicMissing(nowMilliseconds: 0)
        _ = feed.consumed(Fragments.delta("a", 0))
        _ = feed.consumed(Fragments.counting("a", 1))
        let joining = Fragments.joining("a", 2, from: 1, offset: 3)
        guard case .offer(_, let group, _) = feed.consumed(joining) else {
            Issue.record("expected an offer")
            return
        }
        #expect(group.map(\.sequence) == [1, 2])
        #expect(group.first?.bytes == Array(3..<10))
    }

    @Test func pausedTopicsKeepTheirJoinPointAndViewersStartThereOnResume() {
        var feed = Self.machine()
        _ = feed.topicMissing(nowMilliseconds: 0)
        #expect(feed.setPaused(true, nowMilliseconds: 0) == .pause)
        #expect(feed.setPaused(true, nowMilliseconds: 0) == .nothing)
        #expect(feed.viewerAdded(nowMilliseconds: 0) == .paused)
        #expect(feed.consumed(Fragments.key("a", 0)) == .keep)
        #expect(feed.consumed(Fragments.delta("a", 1)) == .keep)
        guard case .resume(let join) = feed.setPaused(false, nowMilliseconds: 1) else {
            Issue.record("expected a resume")
            return
        }
        #expect(Self.sequences(join) == [0, 1])
        #expect(Self.sequences({ if case .join(let j) = feed.viewerAdded(nowMilliseconds: 2) { j } else { nil } }()) == [0, 1])
    }

    @Test func aPauseWhileReadingBackStartsNobodyUntilResumed() {
        var feed = Self.machine(paused: true)
        _ = feed.watermarks(low: 0, high: 5, nowMilliseconds: 0)
        _ = feed.consumed(Fragments.key("a", 0))
        #expect(feed.reachedEnd(at: 5, nowMilliseconds: 0) == .caughtUp(nil))
        guard case .resume(let join) = feed.setPaused(false, nowMilliseconds: 0) else {
            Issue.record("expected a resume")
            return
        }
        #expect(Self.sequences(join) == [0])
    }

    @Test func aStaleStreamIsNotJoinedAndFallingBehindRetentionForgetsTheJoinPoint() {
        var feed = Self.machine()
        _ = feed.topicMissing(nowMilliseconds: 0)
        _ = feed.consumed(Fragments.key("a", 0))
        #expect(feed.viewerAdded(nowMilliseconds: 5_000) == .join(.start([Fragments.key("a", 0)])))
        #expect(feed.viewerAdded(nowMilliseconds: 60_000) == .join(.wait), "a publisher that vanished without an end marker")
        _ = feed.consumed(Fragments.key("a", 100))
        feed.offsetOutOfRange()
        #expect(feed.viewerAdded(nowMilliseconds: 100) == .join(.wait))
    }
}
