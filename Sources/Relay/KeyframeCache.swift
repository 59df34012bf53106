/// The fragments of a topic since its latest keyframe, so a viewer that joins now can start at
/// once instead of waiting for the next keyframe. Pure logic, no I/O.
///
/// It holds one keyframe fragment and the fragments that follow it in the same session without a
/// gap; a new keyframe replaces it, an end marker, a sequence gap or the byte limit empties it.
public struct KeyframeCache: Sendable {
    public let maxBytes: Int
    public private(set) var fragments: [StreamFragment] = []
    public private(set) var byteCount = 0

    public init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    public var isEmpty: Bool { fragments.isEmpty }

    /// Ingest time of the newest fragment held.
    public var newestIngestMilliseconds: Int64? { fragments.last?.ingestMilliseconds }

    public mutating func add(_ fragment: StreamFragment) {
        if fragment.isEnd {
            clear()
            return
        }
        if fragment.isKeyframe {
            clear()
            append(fragment)
            return
        }
        guard let last = fragments.last, last.session == fragment.session, last.sequence &+ 1 == fragment.sequence else {
            clear()
            return
        }
        append(fragment)
    }

    /// Empties the cache when its newest fragment is older than `maxAgeMilliseconds` (a publisher
    /// that vanished without an end marker).
    public mutating func dropIfStale(nowMilliseconds: Int64, maxAgeMilliseconds: Int64) {
        if let newest = newestIngestMilliseconds, nowMilliseconds - newest > maxAgeMilliseconds { clear() }
    }

    public mutating func clear() {
        fragments.removeAll(keepingCapacity: true)
        byteCount = 0
    }

    private mutating func append(_ fragment: StreamFragment) {
        let size = fragment.bytes.count + (fragment.initSegment?.count ?? 0)
        guard byteCount + size <= maxBytes else {
            clear()
            return
        }
        fragments.append(fragment)
        byteCount += size
    }
}
