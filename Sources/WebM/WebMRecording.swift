/// A seekable WebM file made of part of a live recording: the publisher's init segment rewritten
/// with a known Segment size, a Duration, a SeekHead and Cues, then the recording's Clusters.
///
/// The Clusters follow the header unchanged except for their Timecodes, which are moved back by
/// the first Cluster's so the file starts at 0 (rewritten in place, in the same number of bytes:
/// ``patches(for:)``). A recording that already starts at 0 is copied byte for byte. The Segment
/// keeps the unknown size a live recording has, as its Clusters do (players expect no unknown
/// size inside a known one); SeekHead and Cues make it seekable all the same.
public struct WebMRecording: Sendable, Equatable {
    /// Everything before the first Cluster.
    public let header: [UInt8]
    /// Bytes of the Clusters that follow the header (the caller streams them).
    public let bodyLength: Int64
    /// What is subtracted from each Cluster's Timecode.
    public let timecodeBase: UInt64

    /// One Cluster of the body, as the scanner found it, with positions counted from the body's
    /// first byte.
    public typealias Cluster = WebMClusterScanner.Cluster

    /// A rewrite of a few bytes of the body.
    public struct Patch: Sendable, Equatable {
        /// Where in the body (from its first byte).
        public var position: Int64
        public var bytes: [UInt8]
    }

    /// Builds the header for `clusters` (positions counted from the first Cluster, which must be
    /// at 0), `bodyLength` bytes of them, lasting `durationTicks` (TimecodeScale units: ms for
    /// MediaRecorder). Cues point at every Cluster that starts with a keyframe.
    public init(initSegment: [UInt8], videoTrack: UInt64?, clusters: [Cluster], bodyLength: Int64,
                durationTicks: Double) throws(WebMError) {
        guard let first = clusters.first, first.position == 0 else {
            throw WebMError(.unexpectedElement, at: 0, "a recording must start with a Cluster")
        }
        let parts = try Self.split(initSegment)
        let base = first.timecode ?? 0

        let info = EBMLWriter.element(EBMLID.info, parts.infoChildren + EBMLWriter.float(Self.duration, durationTicks))
        let tracks = parts.tracks
        let cueTrack = videoTrack ?? 1
        let cued = clusters.filter { $0.startsWithKeyframe == true }
        // Fixed-width values make each element's size independent of the positions it holds.
        func seekHead(info: Int64, tracks: Int64, cues: Int64) -> [UInt8] {
            let entries = [(EBMLID.info, info), (EBMLID.tracks, tracks), (Self.cues, cues)].map { id, position in
                EBMLWriter.element(Self.seek, EBMLWriter.element(Self.seekID, EBMLWriter.idBytes(id))
                    + EBMLWriter.uint(Self.seekPosition, UInt64(position), width: 8))
            }
            return EBMLWriter.element(EBMLID.seekHead, entries.flatMap { $0 })
        }
        func cues(clustersAt origin: Int64) -> [UInt8] {
            let points = cued.map { cluster in
                EBMLWriter.element(Self.cuePoint,
                    EBMLWriter.uint(Self.cueTime, (cluster.timecode ?? 0) &- base, width: 8)
                    + EBMLWriter.element(Self.cueTrackPositions,
                        EBMLWriter.uint(Self.cueTrack, cueTrack, width: 8)
                        + EBMLWriter.uint(Self.cueClusterPosition, UInt64(origin + cluster.position), width: 8)))
            }
            return EBMLWriter.element(Self.cues, points.flatMap { $0 })
        }
        let seekHeadLength = Int64(seekHead(info: 0, tracks: 0, cues: 0).count)
        let infoAt = seekHeadLength
        let tracksAt = infoAt + Int64(info.count)
        let cuesAt = tracksAt + Int64(tracks.count)
        let clustersAt = cuesAt + Int64(cues(clustersAt: 0).count)
        let segmentBody = seekHead(info: infoAt, tracks: tracksAt, cues: cuesAt) + info + tracks + cues(clustersAt: clustersAt)
        header = parts.ebmlHeader + EBMLWriter.idBytes(EBMLID.segment) + Self.unknownSize + segmentBody
        timecodeBase = base
        self.bodyLength = bodyLength
    }

    /// The Timecode rewrites that move `clusters` back by ``timecodeBase``; none when it is 0.
    public func patches(for clusters: [Cluster]) -> [Patch] {
        guard timecodeBase > 0 else { return [] }
        return clusters.compactMap { cluster in
            guard let timecode = cluster.timecode, let at = cluster.timecodeValuePosition, cluster.timecodeWidth > 0 else { return nil }
            return Patch(position: at, bytes: EBMLWriter.bigEndian(timecode &- timecodeBase, width: cluster.timecodeWidth))
        }
    }

    /// Applies the `patches` that fall in `bytes`, which sit at `position` of the body.
    public static func apply(_ patches: [Patch], to bytes: inout [UInt8], at position: Int64) {
        let end = position + Int64(bytes.count)
        for patch in patches where patch.position < end && patch.position + Int64(patch.bytes.count) > position {
            for (i, byte) in patch.bytes.enumerated() {
                let at = patch.position + Int64(i) - position
                if at >= 0 && at < Int64(bytes.count) { bytes[Int(at)] = byte }
            }
        }
    }

    // MARK: Parsing the init segment

    private struct Parts {
        var ebmlHeader: [UInt8]
        var infoChildren: [UInt8]
        var tracks: [UInt8]
    }

    /// The EBML header, Info's children without any Duration, and the whole Tracks element.
    private static func split(_ initSegment: [UInt8]) throws(WebMError) -> Parts {
        let result: Result<Parts, WebMError> = initSegment.withUnsafeBufferPointer { buffer in
            func header(at index: Int) -> EBMLElementHeader? {
                guard case .success(let parsed?) = EBML.readHeader(buffer, at: index) else { return nil }
                return parsed
            }
            guard let ebml = header(at: 0), ebml.id == EBMLID.ebmlHeader, let ebmlSize = ebml.size,
                  ebml.headerLength + Int(ebmlSize) <= buffer.count
            else { return .failure(WebMError(.notWebM, at: 0, "the init segment does not start with an EBML header")) }
            let segmentAt = ebml.headerLength + Int(ebmlSize)
            guard let segment = header(at: segmentAt), segment.id == EBMLID.segment else {
                return .failure(WebMError(.unexpectedElement, at: Int64(segmentAt), "no Segment after the EBML header"))
            }
            var parts = Parts(ebmlHeader: Array(buffer[0..<segmentAt]), infoChildren: [], tracks: [])
            var index = segmentAt + segment.headerLength
            while index < buffer.count {
                guard let child = header(at: index), let size = child.size, index + child.headerLength + Int(size) <= buffer.count else {
                    return .failure(WebMError(.invalidElement, at: Int64(index), "a malformed element in the init segment"))
                }
                let payload = index + child.headerLength
                let end = payload + Int(size)
                switch child.id {
                case EBMLID.info:
                    var at = payload
                    while at < end {
                        guard let field = header(at: at), let length = field.size, at + field.headerLength + Int(length) <= end else {
                            return .failure(WebMError(.invalidElement, at: Int64(at), "a malformed element in the init segment's Info"))
                        }
                        let next = at + field.headerLength + Int(length)
                        if field.id != duration { parts.infoChildren += buffer[at..<next] }
                        at = next
                    }
                case EBMLID.tracks:
                    parts.tracks = Array(buffer[index..<end])
                default:
                    break  // SeekHead, Void, Cues of the live stream: rebuilt or not needed
                }
                index = end
            }
            guard !parts.tracks.isEmpty else { return .failure(WebMError(.missingTracks, at: 0, "the init segment has no Tracks")) }
            return .success(parts)
        }
        return try result.get()
    }

    /// An 8-byte size field that says "unknown".
    static let unknownSize: [UInt8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

    // MARK: IDs

    static let duration: UInt32 = 0x4489
    static let seek: UInt32 = 0x4DBB
    static let seekID: UInt32 = 0x53AB
    static let seekPosition: UInt32 = 0x53AC
    static let cues: UInt32 = 0x1C53_BB6B
    static let cuePoint: UInt32 = 0xBB
    static let cueTime: UInt32 = 0xB3
    static let cueTrackPositions: UInt32 = 0xB7
    static let cueTrack: UInt32 = 0xF7
    static let cueClusterPosition: UInt32 = 0xF1
}

/// Writes EBML elements.
enum EBMLWriter {
    /// An element ID's bytes (IDs keep their length marker).
    static func idBytes(_ id: UInt32) -> [UInt8] {
        let width = id > 0xFF_FFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1
        return bigEndian(UInt64(id), width: width)
    }

    /// A data size as a variable-length integer, in `width` bytes (the smallest that holds it
    /// when nil).
    static func size(_ value: UInt64, width: Int? = nil) -> [UInt8] {
        var length = width ?? 1
        if width == nil { while length < 8 && value >= (UInt64(1) << (7 * UInt64(length))) - 1 { length += 1 } }
        var bytes = bigEndian(value, width: length)
        bytes[0] |= UInt8(0x80 >> (length - 1))
        return bytes
    }

    static func element(_ id: UInt32, _ payload: [UInt8]) -> [UInt8] {
        idBytes(id) + size(UInt64(payload.count)) + payload
    }

    static func uint(_ id: UInt32, _ value: UInt64, width: Int) -> [UInt8] {
        element(id, bigEndian(value, width: width))
    }

    static func float(_ id: UInt32, _ value: Double) -> [UInt8] {
        element(id, bigEndian(value.bitPattern, width: 8))
    }

    static func bigEndian(_ value: UInt64, width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - $0))) }
    }
}
