/// Finds the Clusters in a recording's media bytes (everything after the init segment), fed in
/// pieces of any size: where each Cluster starts, its timecode and where that value is written,
/// and whether its first video block is a keyframe; and the time of the latest block.
///
/// It keeps at most an element header or a block's first bytes between pieces and skips block
/// data without holding it, so a recording of any length can be scanned as it streams past.
public struct WebMClusterScanner: Sendable {
    /// One Cluster of the scanned bytes.
    public struct Cluster: Equatable, Sendable {
        /// Where the Cluster's ID starts, counted from the first byte scanned.
        public var position: Int64
        /// Its Timecode, in TimecodeScale units (milliseconds for MediaRecorder), once seen.
        public var timecode: UInt64?
        /// Where the Timecode's value is written, and in how many bytes (to rewrite it in place).
        public var timecodeValuePosition: Int64?
        public var timecodeWidth: Int
        /// Whether its first video block is a keyframe; nil until that block has been seen.
        public var startsWithKeyframe: Bool?
    }

    /// The video track's number, whose blocks decide keyframes (nil: every track's).
    public let videoTrack: UInt64?
    /// Every Cluster so far, in order.
    public private(set) var clusters: [Cluster] = []
    /// The latest block time seen (Cluster timecode + the block's relative timecode), and the
    /// earliest: a recording's extent.
    public private(set) var latestBlockTime: Int64?
    public private(set) var earliestBlockTime: Int64?
    /// Bytes scanned so far.
    public private(set) var position: Int64 = 0

    private enum Step: Sendable {
        /// Reading an element header.
        case header
        /// Reading a Timecode value of this many bytes.
        case timecode(Int)
        /// Reading a block's first bytes (track number, relative timecode, flags); then skipping.
        case blockHead(size: UInt64, simple: Bool)
        /// Skipping this many bytes.
        case skip(UInt64)
    }

    private var step = Step.header
    private var pending: [UInt8] = []
    private var pendingStart: Int64 = 0

    public init(videoTrack: UInt64?) {
        self.videoTrack = videoTrack
    }

    /// Scans the next piece of the bytes.
    public mutating func scan(_ bytes: some Collection<UInt8>) throws(WebMError) {
        var index = bytes.startIndex
        while index != bytes.endIndex {
            switch step {
            case .skip(let remaining):
                let available = UInt64(bytes.distance(from: index, to: bytes.endIndex))
                let taken = min(available, remaining)
                index = bytes.index(index, offsetBy: Int(taken))
                position += Int64(taken)
                step = remaining == taken ? .header : .skip(remaining - taken)
            case .header, .timecode, .blockHead:
                if pending.isEmpty { pendingStart = position }
                pending.append(bytes[index])
                index = bytes.index(after: index)
                position += 1
                try advance()
            }
        }
    }

    /// Acts on `pending` when it holds enough for the current step.
    private mutating func advance() throws(WebMError) {
        switch step {
        case .header:
            let parsed = pending.withUnsafeBufferPointer { EBML.readHeader($0, at: 0) }
            switch parsed {
            case .failure:
                throw WebMError(.invalidElement, at: pendingStart, "not a valid EBML element header")
            case .success(nil):
                if pending.count >= 12 { throw WebMError(.invalidElement, at: pendingStart, "not a valid EBML element header") }
            case .success(let header?):
                pending.removeAll(keepingCapacity: true)
                try enter(header, at: pendingStart)
            }
        case .timecode(let width):
            guard pending.count == width else { return }
            let value = pending.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if !clusters.isEmpty {
                clusters[clusters.count - 1].timecode = value
                clusters[clusters.count - 1].timecodeValuePosition = pendingStart
                clusters[clusters.count - 1].timecodeWidth = width
            }
            pending.removeAll(keepingCapacity: true)
            step = .header
        case .blockHead(let size, let simple):
            // Track number (a vint), a signed 16-bit relative timecode, then flags.
            guard case .value(let track, let trackLength, _) = pending.withUnsafeBufferPointer({
                EBML.readVint($0, at: 0, maxLength: 8, keepMarker: false)
            }) else {
                if pending.count >= 8 || UInt64(pending.count) >= size {
                    throw WebMError(.invalidElement, at: pendingStart, "a block with an invalid track number")
                }
                return
            }
            let headLength = trackLength + 3
            guard UInt64(headLength) <= size else {
                throw WebMError(.invalidElement, at: pendingStart, "a block shorter than its own header")
            }
            guard pending.count == headLength else { return }
            let relative = Int16(bitPattern: UInt16(pending[trackLength]) << 8 | UInt16(pending[trackLength + 1]))
            let keyframe = simple && pending[trackLength + 2] & 0x80 != 0
            noteBlock(track: track, relative: relative, keyframe: keyframe)
            pending.removeAll(keepingCapacity: true)
            let rest = size - UInt64(headLength)
            step = rest == 0 ? .header : .skip(rest)
        case .skip:
            break
        }
    }

    private mutating func enter(_ header: EBMLElementHeader, at start: Int64) throws(WebMError) {
        switch header.id {
        case EBMLID.cluster:
            clusters.append(Cluster(position: start, timecode: nil, timecodeValuePosition: nil, timecodeWidth: 0, startsWithKeyframe: nil))
            step = .header  // its children follow, whatever its size
        case EBMLID.blockGroup, EBMLID.segment:
            step = .header  // a master element whose children matter (or the Segment itself)
        case EBMLID.timecode:
            guard let size = header.size, (1...8).contains(size) else {
                throw WebMError(.invalidElement, at: start, "a Cluster Timecode of an impossible size")
            }
            step = .timecode(Int(size))
        case EBMLID.simpleBlock, EBMLID.block:
            guard let size = header.size else {
                throw WebMError(.invalidElement, at: start, "a block of unknown size")
            }
            step = .blockHead(size: size, simple: header.id == EBMLID.simpleBlock)
        default:
            guard let size = header.size else {
                throw WebMError(.unexpectedElement, at: start, "an element of unknown size that is not a Cluster")
            }
            step = size == 0 ? .header : .skip(size)
        }
    }

    private mutating func noteBlock(track: UInt64, relative: Int16, keyframe: Bool) {
        guard let last = clusters.indices.last else { return }
        let time = Int64(clusters[last].timecode ?? 0) + Int64(relative)
        latestBlockTime = max(latestBlockTime ?? time, time)
        earliestBlockTime = min(earliestBlockTime ?? time, time)
        if clusters[last].startsWithKeyframe == nil, videoTrack == nil || track == videoTrack {
            clusters[last].startsWithKeyframe = keyframe
        }
    }
}
