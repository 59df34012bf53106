import NIOCore
import Testing
@testable import Relay

@Suite("Fan-out decisions for one viewer")
struct ViewerStreamStateTests {
    @Test func aViewerStartsOnlyAtAKeyframeWithResetAndInitSegment() {
        var viewer = ViewerStreamState(maxQueuedBytes: 1000)
        #expect(viewer.offer(Fragments.delta("a", 1)) == .skipped)
        #expect(viewer.offer(Fragments.key("a", 2)) == .queued)
        #expect(viewer.offer(Fragments.delta("a", 3)) == .queued)
        let frames = viewer.drain()
        #expect(frames.map(\.kind) == ["reset", "binary", "binary", "binary"])
        #expect(frames[1] == .binary(ByteBuffer(bytes: Fragments.initSegment)))
        #expect(frames[2] == .binary(Fragments.key("a", 2).payload))
        #expect(frames[0] == .text(#"{"type":"reset","session":"a","mimeType":"video/webm; codecs=\"vp8\""}"#))
    }

    @Test func aNewSessionResetsTheViewerAtItsFirstKeyframe() {
        var viewer = ViewerStreamState(maxQueuedBytes: 1000)
        _ = viewer.offer(Fragments.key("a", 0))
        _ = viewer.drain()
        _ = viewer.offer(Fragments.end("a", 1))
        #expect(viewer.offer(Fragments.delta("b", 5)) == .skipped)
        _ = viewer.offer(Fragments.key("b", 6))
        let frames = viewer.drain()
        #expect(frames.map(\.kind) == ["ended", "reset", "binary", "binary"])
    }

    @Test func aNewSessionWithoutEndMarkerAlsoResets() {
        var viewer = ViewerStreamState(maxQueuedBytes: 1000)
        _ = viewer.offer(Fragments.key("a", 0))
        _ = viewer.offer(Fragments.delta("a", 1))
        #expect(viewer.offer(Fragments.delta("b", 0)) == .skipped)
        #expect(viewer.offer(Fragments.delta("a", 2)) == .skipped, "after leaving a session the viewer waits for a keyframe")
        _ = viewer.offer(Fragments.key("b", 1))
        #expect(viewer.drain().map(\.kind) == ["reset", "binary", "binary", "binary", "reset", "binary", "binary"])
    }

    @Test func aSlowViewerIsSkippedToTheNextKeyframeAndStaysBounded() {
        var viewer = ViewerStreamState(maxQueuedBytes: 100)
        _ = viewer.offer(Fragments.key("a", 0, size: 20))
        _ = viewer.drain()  // the viewer has the init segment and the keyframe
        var overflowed = false
        for seq in 1...30 {
            if case .overflowed = viewer.offer(Fragments.delta("a", UInt64(seq), size: 20)) { overflowed = true }
            #expect(viewer.queuedBytes <= 100)
        }
        #expect(overflowed)
        #expect(viewer.phase == .waitingForKeyframe)
        #expect(viewer.skippedForSlowness > 0)
        _ = viewer.offer(Fragments.key("a", 31, size: 20))
        let frames = viewer.drain()
        // Same session, already initialised: a skipped notice, then the keyframe; no reset.
        #expect(frames.map(\.kind) == ["skipped", "binary"])
        #expect(frames[1] == .binary(Fragments.key("a", 31, size: 20).payload))
    }

    @Test func anOverflowBeforeTheInitSegmentWasTakenResetsAgain() {
        var viewer = ViewerStreamState(maxQueuedBytes: 100)
        _ = viewer.offer(Fragments.key("a", 0, size: 20))  // reset + init + key queued, never taken
        for seq in 1...10 { _ = viewer.offer(Fragments.delta("a", UInt64(seq), size: 20)) }
        _ = viewer.offer(Fragments.key("a", 11, size: 20))
        let frames = viewer.drain()
        #expect(frames.first?.kind == "reset", "the init segment never reached the viewer, so it must be sent again")
        #expect(frames.count >= 3)
        #expect(frames[1] == .binary(ByteBuffer(bytes: Fragments.initSegment)))
    }

    @Test func restartMakesTheViewerWaitForTheNextKeyframe() {
        var viewer = ViewerStreamState(maxQueuedBytes: 1000)
        _ = viewer.offer(Fragments.key("a", 0))
        _ = viewer.drain()
        viewer.restart()
        #expect(viewer.offer(Fragments.delta("a", 1)) == .skipped)
        _ = viewer.offer(Fragments.key("a", 2))
        #expect(viewer.drain().map(\.kind) == ["reset", "binary", "binary"])
    }
}

@Suite("Joining at a Cluster made a join point by a later fragment")
struct DelayedJoinPointTests {
    @Test func aWaitingViewerStartsAtTheClusterAndAStreamingOneJustContinues() {
        var cache = KeyframeCache(maxBytes: 1000)
        var streaming = ViewerStreamState(maxQueuedBytes: 1000)
        var waiting = ViewerStreamState(maxQueuedBytes: 1000)
        for fragment in [Fragments.key("a", 0), Fragments.delta("a", 1), Fragments.delta("a", 2)] {
            let group = cache.add(fragment) ? cache.fragments : []
            _ = streaming.offer(fragment, joinGroup: group)
            _ = waiting.offer(fragment, joinGroup: group)
        }
        _ = waiting.drain()
        waiting.restart()
        let joining = Fragments.joining("a", 3, from: 2)
        let group = cache.add(joining) ? cache.fragments : []
        #expect(group.map(\.sequence) == [2, 3])
        _ = streaming.offer(joining, joinGroup: group)
        _ = waiting.offer(joining, joinGroup: group)
        #expect(streaming.drain().map(\.kind) == ["reset", "binary", "binary", "binary", "binary", "binary"],
                "init, 0, 1, 2, then 3 once")
        #expect(waiting.drain().map(\.kind) == ["reset", "binary", "binary", "binary"], "init, the Cluster's start (2), then 3")
    }
}

@Suite("Join points inside a fragment (one fragment per publisher chunk)")
struct JoinPointOffsetTests {
    @Test func aWaitingViewerStartsAtTheJoinPointAndAStreamingOneGetsTheWholeFragment() {
        var streaming = ViewerStreamState(maxQueuedBytes: 1000)
        var waiting = ViewerStreamState(maxQueuedBytes: 1000)
        _ = streaming.offer(Fragments.key("a", 0))
        _ = streaming.drain()
        #expect(waiting.offer(Fragments.delta("a", 0)) == .skipped)
        let fragment = Fragments.keyAt("a", 1, at: 4)
        #expect(streaming.offer(fragment) == .queued)
        #expect(waiting.offer(fragment) == .queued)
        #expect(streaming.drain() == [.binary(ByteBuffer(bytes: Array(0..<10)))])
        let frames = waiting.drain()
        #expect(frames.map(\.kind) == ["reset", "binary", "binary"])
        #expect(frames.last == .binary(ByteBuffer(bytes: Array(4..<10))), "the bytes from the Cluster on")
    }

    @Test func theCacheHandsOutTheStreamFromTheJoinPoint() {
        var cache = KeyframeCache(maxBytes: 1000)
        cache.add(Fragments.delta("a", 0))
        cache.add(Fragments.keyAt("a", 1, at: 6))
        cache.add(Fragments.delta("a", 2))
        #expect(cache.fragments.map(\.sequence) == [1, 2])
        #expect(cache.fragments.first?.bytes == [6, 7, 8, 9])
        #expect(cache.fragments.first?.isKeyframe == true)
        // A later fragment names a Cluster that opened 3 bytes into fragment 4.
        cache.add(Fragments.counting("a", 3))
        cache.add(Fragments.counting("a", 4))
        cache.add(Fragments.delta("a", 5))
        let made = cache.add(Fragments.joining("a", 6, from: 4, offset: 3))
        #expect(made)
        #expect(cache.fragments.map(\.sequence) == [4, 5, 6])
        #expect(cache.fragments.first?.bytes == Array(3..<10))
        #expect(cache.fragments.first?.initSegment == Fragments.initSegment)
        // An offset past the fragment it names is not a join point.
        cache.add(Fragments.counting("a", 7))
        let madeOutOfRange = cache.add(Fragments.joining("a", 8, from: 7, offset: 10))
        #expect(!madeOutOfRange)
        #expect(cache.isEmpty)
    }

    @Test func aViewerJoiningThroughTheCacheGetsAnExactSuffix() {
        var cache = KeyframeCache(maxBytes: 1000)
        var early = ViewerStreamState(maxQueuedBytes: 1000)
        let fragments = [Fragments.counting("a", 0), Fragments.counting("a", 1), Fragments.delta("a", 2),
                         Fragments.joining("a", 3, from: 1, offset: 5), Fragments.delta("a", 4)]
        var late = ViewerStreamState(maxQueuedBytes: 1000)
        for (index, fragment) in fragments.enumerated() {
            let group = cache.add(fragment) ? cache.fragments : []
            _ = early.offer(fragment, joinGroup: group)
            if index == 3 { for cached in cache.fragments { _ = late.offer(cached) } }
            if index == 4 { _ = late.offer(fragment) }
        }
        let bytes = { (frames: [ViewerFrame]) -> [UInt8] in
            frames.dropFirst(2).flatMap { frame -> [UInt8] in
                guard case .binary(let buffer) = frame else { return [] }
                return Array(buffer.readableBytesView)
            }
        }
        let expected = Array(5..<10) + fragments[2...].flatMap(\.bytes)
        #expect(bytes(early.drain()) == expected, "a waiting viewer starts at byte 5 of fragment 1")
        #expect(bytes(late.drain()) == expected, "so does one that arrives later")
    }
}

@Suite("Keyframe cache for joining viewers")
struct KeyframeCacheTests {
    @Test func holdsTheLatestKeyframeGroup() {
        var cache = KeyframeCache(maxBytes: 1000)
        cache.add(Fragments.delta("a", 0))
        #expect(cache.isEmpty, "nothing to start from before a keyframe")
        cache.add(Fragments.key("a", 1))
        cache.add(Fragments.delta("a", 2))
        cache.add(Fragments.key("a", 3))
        cache.add(Fragments.delta("a", 4))
        #expect(cache.fragments.map(\.sequence) == [3, 4])
    }

    @Test func gapsEndsAndTheByteLimitEmptyIt() {
        var cache = KeyframeCache(maxBytes: 35)
        cache.add(Fragments.key("a", 1, size: 5))
        cache.add(Fragments.delta("a", 3))
        #expect(cache.isEmpty, "a sequence gap means lost records")
        cache.add(Fragments.key("a", 4, size: 5))
        cache.add(Fragments.end("a", 5))
        #expect(cache.isEmpty)
        cache.add(Fragments.key("b", 0, size: 1))  // 1 + init (29) bytes
        cache.add(Fragments.delta("b", 1, size: 10))
        #expect(cache.isEmpty, "over the byte limit")
    }

    @Test func aLaterKeyframeMakesTheClusterItsFragmentOpenedAJoinPoint() {
        var cache = KeyframeCache(maxBytes: 1000)
        // No keyframe yet: a Cluster opens (2, with its audio), more audio (3), then its keyframe (4).
        cache.add(Fragments.delta("a", 1))
        cache.add(Fragments.delta("a", 2))
        cache.add(Fragments.delta("a", 3))
        #expect(cache.isEmpty)
        let madeFirst = cache.add(Fragments.joining("a", 4, from: 2))
        #expect(madeFirst)
        #expect(cache.fragments.map(\.sequence) == [2, 3, 4])
        #expect(cache.fragments.first?.isKeyframe == true && cache.fragments.first?.initSegment == Fragments.initSegment)
        // Over an earlier group, the same.
        cache.add(Fragments.delta("a", 5))
        cache.add(Fragments.delta("a", 6))
        let madeSecond = cache.add(Fragments.joining("a", 7, from: 6))
        #expect(madeSecond)
        #expect(cache.fragments.map(\.sequence) == [6, 7])
        // A join point whose Cluster start the cache never saw (a gap) is not one.
        cache.add(Fragments.delta("a", 9))
        let madeAfterGap = cache.add(Fragments.joining("a", 10, from: 8))
        #expect(!madeAfterGap)
        #expect(cache.isEmpty)
    }

    @Test func staleStreamsAreNotOffered() {
        var cache = KeyframeCache(maxBytes: 1000)
        cache.add(Fragments.key("a", 100))
        cache.dropIfStale(nowMilliseconds: 5_000, maxAgeMilliseconds: 10_000)
        #expect(!cache.isEmpty)
        cache.dropIfStale(nowMilliseconds: 20_000, maxAgeMilliseconds: 10_000)
        #expect(cache.isEmpty)
    }
}
