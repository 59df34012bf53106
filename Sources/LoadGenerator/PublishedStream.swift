/// What a load-generating publisher sends: a committed MediaRecorder recording repeated for as long
/// as needed, each repetition's Cluster timecodes moved on so the stream stays one valid,
/// ever-advancing WebM stream (and so every Cluster's bytes are unique, which lets a viewer's bytes
/// be located in it). Cut into chunks of the recording's own sizes, one chunk per
/// `chunkMilliseconds`, as the browser cut it.
///
/// Pure data: it also knows where every WebM element ends, so a viewer's latency can be measured
/// per chunk — from the chunk being sent to the viewer holding the last complete element of it.
public struct PublishedStream: Sendable {
    /// The whole stream: the init segment, then Clusters.
    public let bytes: [UInt8]
    /// Everything before the first Cluster (what a relay sends a viewer as its init segment).
    public let initSegmentLength: Int
    /// Offsets where Clusters start, ascending (where a viewer joins).
    public let clusterStarts: [Int]
    /// End offset (exclusive) of each chunk, ascending.
    public let chunkEnds: [Int]
    public let chunkMilliseconds: Int
    /// For each chunk that completes at least one element: the end of its last complete element,
    /// and the chunk. Ascending by offset.
    public let completions: [(offset: Int, chunk: Int)]

    /// Builds at least `minimumChunks` chunks of stream from `recording` (a WebM file whose Segment
    /// and Clusters may have unknown sizes, as MediaRecorder writes them) cut by `chunkSizes`.
    public init(recording: [UInt8], chunkSizes: [Int], chunkMilliseconds: Int = 100, minimumChunks: Int) throws(LoadGeneratorError) {
        let layout = try RecordingLayout(recording)
        let sizes = chunkSizes.filter { $0 > 0 }
        guard !sizes.isEmpty else { throw .badRecording("no chunk sizes") }
        self.chunkMilliseconds = chunkMilliseconds

        var out = Array(recording[0..<layout.initSegmentEnd])
        var clusterStarts: [Int] = []
        var elementEnds: [Int] = []
        // Where the recording's bytes landed in the stream, repetition by repetition, so that the
        // stream is cut where the recorder cut the recording (MediaRecorder ends its chunks on
        // element boundaries; cutting elsewhere would change what a relay can forward at once).
        var pieces: [[Piece]] = []
        let neededBytes = Self.bytesNeeded(for: minimumChunks, sizes: sizes)
        var loop: UInt64 = 0
        while out.count < neededBytes {
            var placed: [Piece] = []
            for cluster in layout.clusters {
                clusterStarts.append(out.count)
                let timecode = cluster.timecode + loop * layout.loopSpan
                // Cluster ID, then an unknown size (its children follow; the next Cluster ends it).
                let start = out.count
                out.append(contentsOf: [0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
                // Timecode: a 4-byte unsigned integer.
                out.append(contentsOf: [0xE7, 0x84])
                out.append(contentsOf: (0..<4).reversed().map { UInt8(truncatingIfNeeded: timecode >> (8 * UInt64($0))) })
                placed.append(Piece(original: cluster.start..<cluster.headerEnd, placedAt: start, placedLength: out.count - start))
                elementEnds.append(out.count)
                for child in cluster.otherChildren {
                    placed.append(Piece(original: child, placedAt: out.count, placedLength: child.count))
                    out.append(contentsOf: recording[child])
                    elementEnds.append(out.count)
                }
            }
            pieces.append(placed)
            loop += 1
        }
        // The recorder's chunk ends, repetition by repetition (the first also covers the init segment).
        var originalEnds: [Int] = []
        var total = 0
        for size in sizes {
            total += size
            originalEnds.append(min(total, recording.count))
        }
        var chunkEnds: [Int] = []
        for (repetition, placed) in pieces.enumerated() {
            for end in originalEnds where repetition == 0 || end > layout.initSegmentEnd {
                guard let mapped = Self.place(end, in: placed, initSegmentEnd: layout.initSegmentEnd) else { continue }
                if mapped > (chunkEnds.last ?? 0) { chunkEnds.append(mapped) }
            }
        }
        if (chunkEnds.last ?? 0) < out.count { chunkEnds.append(out.count) }
        // The last complete element of each chunk.
        var completions: [(Int, Int)] = []
        var elementIndex = 0
        for (chunk, end) in chunkEnds.enumerated() {
            var last: Int?
            while elementIndex < elementEnds.count, elementEnds[elementIndex] <= end {
                last = elementEnds[elementIndex]
                elementIndex += 1
            }
            if let last { completions.append((last, chunk)) }
        }
        self.bytes = out
        self.initSegmentLength = layout.initSegmentEnd
        self.clusterStarts = clusterStarts
        self.chunkEnds = chunkEnds
        self.completions = completions
    }

    /// A stretch of the recording and where it went in the stream.
    private struct Piece {
        var original: Range<Int>
        var placedAt: Int
        var placedLength: Int
    }

    /// Where the end of the recording's first `end` bytes falls in one repetition.
    private static func place(_ end: Int, in pieces: [Piece], initSegmentEnd: Int) -> Int? {
        if end <= initSegmentEnd { return end }
        guard let piece = pieces.first(where: { $0.original.lowerBound < end && end <= $0.original.upperBound }) else {
            return end >= (pieces.last?.original.upperBound ?? 0) ? pieces.last.map { $0.placedAt + $0.placedLength } : nil
        }
        return piece.placedAt + min(piece.placedLength, end - piece.original.lowerBound)
    }

    private static func bytesNeeded(for chunks: Int, sizes: [Int]) -> Int {
        let cycle = sizes.reduce(0, +)
        return (chunks / sizes.count + 1) * cycle
    }

    /// The bytes of chunk `index`.
    public func chunk(_ index: Int) -> ArraySlice<UInt8> {
        let start = index == 0 ? 0 : chunkEnds[index - 1]
        return bytes[start..<chunkEnds[index]]
    }

    /// The Cluster start where `prefix` is found, if it starts one.
    public func clusterStart(matching prefix: UnsafeRawBufferPointer) -> Int? {
        for start in clusterStarts where matches(prefix, at: start) { return start }
        return nil
    }

    /// Whether `data` equals the stream's bytes at `offset`.
    public func matches(_ data: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard offset >= 0, offset + data.count <= bytes.count else { return false }
        guard data.count > 0 else { return true }
        return bytes.withUnsafeBytes { stream in
            guard let base = stream.baseAddress, let other = data.baseAddress else { return false }
            return memcmp(base + offset, other, data.count) == 0
        }
    }

    /// Chunks whose last complete element lies in `(start, end]`: a viewer that just received
    /// bytes up to `end` (having had them up to `start`) now holds those chunks whole.
    public func chunksCompleted(after start: Int, through end: Int) -> ArraySlice<(offset: Int, chunk: Int)> {
        var low = 0
        var high = completions.count
        while low < high {
            let mid = (low + high) / 2
            if completions[mid].offset <= start { low = mid + 1 } else { high = mid }
        }
        var upper = low
        while upper < completions.count, completions[upper].offset <= end { upper += 1 }
        return completions[low..<upper]
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where things are in a recording: the init segment and each Cluster's timecode and children.
struct RecordingLayout {
    struct Cluster {
        /// Where the Cluster starts, and where its header and Timecode end, in the recording.
        var start: Int
        var headerEnd: Int
        var timecode: UInt64
        /// Byte ranges of the Cluster's children other than its Timecode.
        var otherChildren: [Range<Int>]
    }

    var initSegmentEnd: Int
    var clusters: [Cluster]
    /// How far the timecodes move on per repetition (ms at the default timecode scale).
    var loopSpan: UInt64

    init(_ bytes: [UInt8]) throws(LoadGeneratorError) {
        var reader = EBMLReader(bytes: bytes)
        guard let header = reader.element(at: 0), header.id == 0x1A45_DFA3, let headerEnd = header.end else {
            throw .badRecording("it does not start with an EBML header")
        }
        guard let segment = reader.element(at: headerEnd), segment.id == 0x1853_8067 else {
            throw .badRecording("no Segment after the EBML header")
        }
        var position = segment.dataStart
        var firstCluster: Int?
        while let element = reader.element(at: position) {
            if element.id == 0x1F43_B675 { firstCluster = position; break }
            guard let end = element.end else { throw .badRecording("an element of unknown size before the first Cluster") }
            position = end
        }
        guard let firstCluster else { throw .badRecording("no Cluster") }
        if segment.end != nil { throw .badRecording("the Segment has a known size; record it with MediaRecorder (unknown sizes)") }
        initSegmentEnd = firstCluster
        clusters = []
        position = firstCluster
        while let cluster = reader.element(at: position), cluster.id == 0x1F43_B675 {
            var child = cluster.dataStart
            var timecode: UInt64 = 0
            var headerEnd = cluster.dataStart
            var others: [Range<Int>] = []
            while let element = reader.element(at: child), let end = element.end, Self.clusterChildren.contains(element.id) {
                if let clusterEnd = cluster.end, child >= clusterEnd { break }
                if element.id == 0xE7 {
                    timecode = bytes[element.dataStart..<end].reduce(0) { $0 << 8 | UInt64($1) }
                    if others.isEmpty { headerEnd = end }
                } else {
                    others.append(child..<end)
                }
                child = end
            }
            clusters.append(Cluster(start: position, headerEnd: headerEnd, timecode: timecode, otherChildren: others))
            position = cluster.end ?? child
        }
        guard let first = clusters.first?.timecode, let last = clusters.last?.timecode, clusters.count > 1 else {
            throw .badRecording("fewer than two Clusters")
        }
        loopSpan = (last - first) + (last - first) / UInt64(clusters.count - 1)
    }

    static let clusterChildren: Set<UInt32> = [0xE7, 0xA3, 0xA0, 0xA7, 0xAB, 0x5854, 0xAF, 0xEC, 0xBF]
}

/// Just enough EBML to walk a recording.
struct EBMLReader {
    let bytes: [UInt8]

    struct Element {
        var id: UInt32
        var dataStart: Int
        /// nil for an unknown size.
        var end: Int?
    }

    func element(at offset: Int) -> Element? {
        guard let (id, idLength) = vint(at: offset, keepMarker: true), idLength <= 4,
              let (size, sizeLength) = vint(at: offset + idLength, keepMarker: false)
        else { return nil }
        let dataStart = offset + idLength + sizeLength
        let unknown = size == (UInt64(1) << (7 * UInt64(sizeLength))) - 1
        if unknown { return Element(id: UInt32(id), dataStart: dataStart, end: nil) }
        guard size <= UInt64(bytes.count - dataStart) else { return nil }
        return Element(id: UInt32(id), dataStart: dataStart, end: dataStart + Int(size))
    }

    private func vint(at offset: Int, keepMarker: Bool) -> (UInt64, Int)? {
        guard offset < bytes.count, bytes[offset] != 0 else { return nil }
        let length = bytes[offset].leadingZeroBitCount + 1
        guard offset + length <= bytes.count else { return nil }
        var value = UInt64(keepMarker ? bytes[offset] : bytes[offset] & (0xFF >> length))
        for index in 1..<length { value = value << 8 | UInt64(bytes[offset + index]) }
        return (value, length)
    }
}

/// A recording or a run the load generator cannot use.
public enum LoadGeneratorError: Error, CustomStringConvertible {
    case badRecording(String)

    public var description: String {
        switch self {
        case .badRecording(let detail): "the recording cannot be replayed: \(detail)"
        }
    }
}
