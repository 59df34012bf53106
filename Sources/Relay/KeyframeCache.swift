import NIOCore

/// The fragments of a topic since its latest join point, so a viewer that joins now can start at
/// once instead of waiting for the next one. Pure logic, no I/O.
///
/// A join point is a Cluster whose first video block is a keyframe. A fragment names one in its
/// own bytes (`joinAt`), or, with `joinFrom`, the start of a Cluster that opened in an earlier
/// fragment (the publisher's relay forwards a Cluster's start without waiting for its first video
/// block). So the cache also keeps the recent fragments that follow on without a gap while it has
/// no join point, within the same byte limit. What it hands out starts exactly at the join point:
/// the first fragment is cut there (sharing its bytes).
///
/// A new join point replaces what it holds; an end marker, a sequence gap or the byte limit
/// (with a join point) empties it.
public struct KeyframeCache: Sendable {
    public let maxBytes: Int
    /// The most recent fragments of one session, without a gap; the first is a join point when
    /// `startsAtJoinPoint`.
    private var run: [StreamFragment] = []
    private var startsAtJoinPoint = false
    public private(set) var byteCount = 0

    public init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// What a viewer joining now gets: a keyframe fragment (with the init segment) and what follows.
    public var fragments: [StreamFragment] { startsAtJoinPoint ? run : [] }

    /// No join point held.
    public var isEmpty: Bool { !startsAtJoinPoint }

    /// The newest fragment seen (join point or not), for gap checks.
    public var last: StreamFragment? { run.last }

    /// Ingest time of the newest fragment held.
    public var newestIngestMilliseconds: Int64? { run.last?.ingestMilliseconds }

    /// Adds the next fragment of the topic. Returns true when it made an earlier fragment a join
    /// point (``fragments`` now starts there and ends with it).
    @discardableResult
    public mutating func add(_ fragment: StreamFragment) -> Bool {
        if fragment.isEnd {
            clear()
            return false
        }
        if let at = fragment.joinAt {
            clear()
            if let start = fragment.joining(at: at) { startsAtJoinPoint = append(start) }
            return false
        }
        guard let last = run.last, last.session == fragment.session, last.sequence &+ 1 == fragment.sequence else {
            clear()
            _ = append(fragment)
            return false
        }
        if let from = fragment.joinFrom, let initSegment = fragment.initSegment,
           let index = run.firstIndex(where: { $0.sequence == from }) {
            var opening = run[index]
            opening.initSegment = initSegment
            let following = run[(index + 1)...]
            clear()
            guard let start = opening.joining(at: fragment.joinFromOffset) else {
                _ = append(fragment)
                return false
            }
            startsAtJoinPoint = append(start)
            for next in following where startsAtJoinPoint { startsAtJoinPoint = append(next) }
            if startsAtJoinPoint { startsAtJoinPoint = append(fragment) }
            return startsAtJoinPoint
        }
        if !append(fragment) { clear() }
        return false
    }

    /// Empties the cache when its newest fragment is older than `maxAgeMilliseconds` (a publisher
    /// that vanished without an end marker).
    public mutating func dropIfStale(nowMilliseconds: Int64, maxAgeMilliseconds: Int64) {
        if let newest = newestIngestMilliseconds, nowMilliseconds - newest > maxAgeMilliseconds { clear() }
    }

    public mutating func clear() {
        run.removeAll(keepingCapacity: true)
        byteCount = 0
        startsAtJoinPoint = false
    }

    private static func size(_ fragment: StreamFragment) -> Int {
        fragment.payload.readableBytes + (fragment.initSegment?.count ?? 0)
    }

    /// Appends within the byte limit: without a join point the oldest fragments make room. Returns
    /// false when a run from a join point would pass the limit (nothing is appended).
    private mutating func append(_ fragment: StreamFragment) -> Bool {
        let size = Self.size(fragment)
        guard size <= maxBytes else { return false }
        if byteCount + size > maxBytes {
            if startsAtJoinPoint { return false }
            var dropped = 0
            while byteCount + size > maxBytes, dropped < run.count {
                byteCount -= Self.size(run[dropped])
                dropped += 1
            }
            run.removeFirst(dropped)
        }
        run.append(fragment)
        byteCount += size
        return true
    }
}
