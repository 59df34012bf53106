import NIOCore

/// Which bytes of a topic's records make one session's recording: from its first join point among
/// the records given (a Cluster that opens with a keyframe, so a player can start there) to its
/// end marker, or to the offset where the recording stops. Pure: the archive reads the records
/// and feeds them in offset order, twice (once to index the Clusters, once to send them), and
/// gets the same bytes both times.
struct RecordingCut: Sendable {
    /// The session recorded.
    let session: String
    /// The first offset not included.
    let endOffset: Int64
    /// Where the recording starts: the record and the byte in it. Nil until its first join point.
    private(set) var start: (offset: Int64, byte: Int)?
    /// The init segment carried with the first join point.
    private(set) var initSegment: [UInt8]?
    /// The session ended, or `endOffset` was reached: nothing more comes.
    private(set) var finished = false
    /// The session's latest records before its first join point (a Cluster can open in one record
    /// and become a join point in a later one: `kvb-join-from`).
    private var carried: [(offset: Int64, fragment: StreamFragment)] = []

    static let maxCarried = 16

    /// `startedAt`: the recording is known to be under way at that record (a range of the file
    /// read from a checkpoint): every record of the session from there on is taken whole.
    init(session: String, endOffset: Int64, startedAt: Int64? = nil) {
        self.session = session
        self.endOffset = endOffset
        start = startedAt.map { ($0, 0) }
    }

    /// The recording's bytes in the record at `offset` (`fragment` nil: not a kvb fragment), in order.
    mutating func take(_ fragment: StreamFragment?, offset: Int64) -> [ByteBuffer] {
        guard !finished else { return [] }
        guard offset < endOffset else {
            finished = true
            return []
        }
        guard let fragment, fragment.session == session else { return [] }
        if fragment.isEnd {
            finished = true
            return []
        }
        if start != nil { return [fragment.payload] }
        if let joinAt = fragment.joinAt, let tail = fragment.payload.getSlice(at: fragment.payload.readerIndex + joinAt,
                                                                             length: fragment.payload.readableBytes - joinAt) {
            start = (offset, joinAt)
            initSegment = fragment.initSegment
            carried = []
            return [tail]
        }
        if let from = fragment.joinFrom, let index = carried.firstIndex(where: { $0.fragment.sequence == from }) {
            let opening = carried[index]
            let skip = fragment.joinFromOffset
            guard skip < opening.fragment.payload.readableBytes,
                  let tail = opening.fragment.payload.getSlice(at: opening.fragment.payload.readerIndex + skip,
                                                               length: opening.fragment.payload.readableBytes - skip)
            else { return [] }
            start = (opening.offset, skip)
            initSegment = fragment.initSegment
            let between = carried[(index + 1)...].map(\.fragment.payload)
            carried = []
            return [tail] + between + [fragment.payload]
        }
        carried.append((offset, fragment))
        if carried.count > Self.maxCarried { carried.removeFirst() }
        return []
    }
}
