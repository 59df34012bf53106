/// Turns a WebM byte stream, in chunks cut anywhere (as MediaRecorder delivers them), into the
/// init segment and fragments cut at element boundaries.
///
/// Nothing complete is held for the next chunk. The fragments' bytes concatenated after the init
/// segment are exactly the input, and the join points (Clusters whose first video block is a
/// keyframe) depend only on the stream, never on how it was chunked: a Cluster start is marked
/// as one on its own fragment when its first video block came in the same chunk, or by
/// ``WebMFragment/makesClusterAJoinPoint`` on that block's fragment when it came later. Memory is bounded by
/// `maxElementSize` and `maxInitSegmentSize`: the segmenter holds at most one incomplete element,
/// and everything before the first Cluster (the init segment) is refused past its own limit,
/// by declared size, before it is buffered.
///
/// ```swift
/// var segmenter = WebMSegmenter()
/// for output in try segmenter.append(chunk) { ... }
/// ```
public struct WebMSegmenter: Sendable {
    /// Largest element accepted (a block, or an element of the init segment).
    public let maxElementSize: Int
    /// A Cluster start waiting for its first video block is flushed (as a non-keyframe) past this.
    public let maxPendingClusterStart: Int
    /// Largest init segment (EBML header, Segment header, Info, Tracks and anything else before
    /// the first Cluster). MediaRecorder's is about 200 bytes.
    public let maxInitSegmentSize: Int

    private enum Phase: Sendable {
        case ebmlHeader, segmentHeader, beforeFirstCluster, clusters, ended
    }

    private struct OpenCluster: Sendable {
        /// Absolute end offset when the Cluster has a known size.
        var end: Int64?
        /// The Cluster's bytes so far while waiting for its first video block (within one chunk).
        var pendingStart: [UInt8]?
        /// The Cluster's start went out before its first video block arrived (the chunk ended):
        /// that block, when it comes, says whether the Cluster is a join point.
        var awaitingDecision = false
    }

    private var phase: Phase = .ebmlHeader
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Absolute offset of `buffer[0]`.
    private var bufferOffset: Int64 = 0
    private var initBytes: [UInt8] = []
    private var sawTracks = false
    private var segmentEnd: Int64?
    private var cluster: OpenCluster?
    private var decidingTrack: UInt64?
    private var hasVideo = false
    private var failure: WebMError?

    public init(maxElementSize: Int = 8 << 20, maxPendingClusterStart: Int = 1 << 20, maxInitSegmentSize: Int = 256 << 10) {
        self.maxElementSize = maxElementSize
        self.maxPendingClusterStart = maxPendingClusterStart
        self.maxInitSegmentSize = maxInitSegmentSize
    }

    /// Bytes consumed into outputs (or the pending Cluster start) so far.
    public var position: Int64 { bufferOffset + Int64(readIndex) }

    /// Bytes held waiting for the rest of an element.
    public var bufferedByteCount: Int { buffer.count - readIndex + (cluster?.pendingStart?.count ?? 0) }

    /// Whether a Cluster start is held waiting for its first video block (never between calls to
    /// ``append(_:)``).
    var holdsClusterStart: Bool { cluster?.pendingStart != nil }

    /// The init segment, once it is complete.
    public private(set) var initSegment: WebMInitSegment?

    /// Feeds the next chunk. Returns everything that became complete. After an error the
    /// segmenter refuses further input with the same error.
    public mutating func append(_ chunk: some Collection<UInt8>) throws(WebMError) -> [WebMSegmenterOutput] {
        if let failure { throw failure }
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            buffer.removeFirst(readIndex)
            bufferOffset += Int64(readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: chunk)
        var outputs: [WebMSegmenterOutput] = []
        do {
            while try step(into: &outputs) {}
        } catch {
            failure = error
            throw error
        }
        // Nothing waits for the next chunk: a Cluster start still waiting for its first video
        // block goes out now (typically its header and an audio block), and that block marks the
        // Cluster as a join point when it arrives.
        if let pending = cluster?.pendingStart {
            cluster?.pendingStart = nil
            cluster?.awaitingDecision = true
            outputs.append(.fragment(WebMFragment(bytes: pending, startsCluster: true, isKeyframe: false)))
        }
        return outputs
    }

    /// Ends the stream: a Cluster start still waiting for a video block is emitted as it is.
    /// (``append(_:)`` never leaves one waiting; this is for callers that segment in other ways.)
    public mutating func finish() -> [WebMSegmenterOutput] {
        guard let pending = cluster?.pendingStart else { return [] }
        cluster?.pendingStart = nil
        return [.fragment(WebMFragment(bytes: pending, startsCluster: true, isKeyframe: !hasVideo))]
    }

    // MARK: - Parsing

    private func error(_ kind: WebMError.Kind, at index: Int, _ detail: String) -> WebMError {
        WebMError(kind, at: bufferOffset + Int64(index), detail)
    }

    /// Reads the header at `readIndex`; nil if more bytes are needed.
    private func header() throws(WebMError) -> EBMLElementHeader? {
        let result = buffer.withUnsafeBufferPointer { EBML.readHeader($0, at: readIndex) }
        switch result {
        case .success(let header): return header
        case .failure(.invalidID): throw error(.invalidElement, at: readIndex, "invalid EBML element ID")
        case .failure(.invalidSize): throw error(.invalidElement, at: readIndex, "invalid EBML element size")
        }
    }

    /// The whole element at `readIndex` if it is fully buffered, checking its size limit.
    private func wholeElement(_ header: EBMLElementHeader, name: String) throws(WebMError) -> ArraySlice<UInt8>? {
        guard let size = header.size else {
            throw error(.unexpectedElement, at: readIndex, "\(name) (ID 0x\(String(header.id, radix: 16, uppercase: true))) has unknown size where only a known size is allowed")
        }
        guard size <= UInt64(maxElementSize) else {
            throw error(.elementTooLarge, at: readIndex, "\(name) of \(size) bytes exceeds the \(maxElementSize)-byte limit")
        }
        let end = readIndex + header.headerLength + Int(size)
        guard end <= buffer.count else { return nil }
        return buffer[readIndex..<end]
    }

    /// Refuses an element that would take the init segment past its limit, by its declared size
    /// (an unknown size counts as the rest of the limit), before any of it is buffered.
    private func checkInitSegmentRoom(_ header: EBMLElementHeader, name: String) throws(WebMError) {
        let declared = header.size.map { $0 > UInt64(Int.max / 2) ? Int.max / 2 : Int($0) } ?? 0
        let total = initBytes.count + header.headerLength + declared
        guard total <= maxInitSegmentSize else {
            throw error(.initSegmentTooLarge, at: readIndex,
                        "the init segment would reach \(total) bytes with this \(name) (limit \(maxInitSegmentSize)); everything before the first Cluster counts")
        }
    }

    /// One parsing step. Returns false when more input is needed.
    private mutating func step(into outputs: inout [WebMSegmenterOutput]) throws(WebMError) -> Bool {
        switch phase {
        case .ebmlHeader:
            guard let header = try peekHeaderOrFirstByteCheck() else { return false }
            guard header.id == EBMLID.ebmlHeader else {
                throw error(.notWebM, at: readIndex, "not WebM: the stream must start with an EBML header (1A 45 DF A3)")
            }
            try checkInitSegmentRoom(header, name: "EBML header")
            guard let element = try wholeElement(header, name: "EBML header") else { return false }
            try checkDocType(element, header: header)
            initBytes.append(contentsOf: element)
            readIndex += element.count
            phase = .segmentHeader
            return true

        case .segmentHeader:
            guard let header = try header() else { return false }
            if header.id == EBMLID.void || header.id == EBMLID.crc32 {
                try checkInitSegmentRoom(header, name: "Void")
                guard let element = try wholeElement(header, name: "Void") else { return false }
                initBytes.append(contentsOf: element)
                readIndex += element.count
                return true
            }
            guard header.id == EBMLID.segment else {
                throw error(.unexpectedElement, at: readIndex, "expected a Segment after the EBML header, found ID 0x\(hex(header.id))")
            }
            guard initBytes.count + header.headerLength <= maxInitSegmentSize else {
                throw error(.initSegmentTooLarge, at: readIndex, "the init segment exceeds \(maxInitSegmentSize) bytes")
            }
            initBytes.append(contentsOf: buffer[readIndex..<readIndex + header.headerLength])
            readIndex += header.headerLength
            segmentEnd = header.size.map { position + Int64($0) }
            phase = .beforeFirstCluster
            return true

        case .beforeFirstCluster:
            guard let header = try header() else { return false }
            if header.id == EBMLID.cluster {
                guard sawTracks else {
                    throw error(.missingTracks, at: readIndex, "a Cluster arrived before the Tracks element")
                }
                let tracks = WebMInitSegment.parseTracks(in: initBytes)
                let video = tracks.first { $0.kind == .video }
                hasVideo = video != nil
                decidingTrack = video?.number
                let segment = WebMInitSegment(bytes: initBytes, tracks: tracks)
                initSegment = segment
                outputs.append(.initSegment(segment))
                initBytes = []
                phase = .clusters
                return true
            }
            if header.id == EBMLID.ebmlHeader || header.id == EBMLID.segment {
                throw error(.unexpectedElement, at: readIndex, "unexpected \(header.id == EBMLID.segment ? "Segment" : "EBML header") inside the Segment")
            }
            try checkInitSegmentRoom(header, name: "element (ID 0x\(hex(header.id)))")
            guard let element = try wholeElement(header, name: "Segment child") else { return false }
            if header.id == EBMLID.tracks { sawTracks = true }
            initBytes.append(contentsOf: element)
            readIndex += element.count
            return true

        case .clusters:
            if let end = segmentEnd, position >= end {
                phase = .ended
                return true
            }
            if cluster != nil { return try stepInCluster(into: &outputs) }
            guard let header = try header() else { return false }
            switch header.id {
            case EBMLID.cluster:
                let start = buffer[readIndex..<readIndex + header.headerLength]
                readIndex += header.headerLength
                cluster = OpenCluster(end: header.size.map { position + Int64($0) }, pendingStart: Array(start))
                return true
            case EBMLID.ebmlHeader:
                throw error(.unexpectedElement, at: readIndex, "a second EBML header: one connection carries one recording, reconnect to start a new one")
            default:
                guard let element = try wholeElement(header, name: "Segment child") else { return false }
                readIndex += element.count
                outputs.append(.fragment(WebMFragment(bytes: Array(element), startsCluster: false, isKeyframe: false)))
                return true
            }

        case .ended:
            guard readIndex < buffer.count else { return false }
            throw error(.unexpectedElement, at: readIndex, "data after the end of the Segment")
        }
    }

    private mutating func stepInCluster(into outputs: inout [WebMSegmenterOutput]) throws(WebMError) -> Bool {
        if let end = cluster?.end, position >= end {
            closeCluster(into: &outputs)
            return true
        }
        guard let header = try header() else { return false }
        if cluster?.end == nil, !EBMLID.clusterChildren.contains(header.id) {
            // An unknown-size Cluster ends where an element that cannot be its child begins.
            closeCluster(into: &outputs)
            return true
        }
        guard let element = try wholeElement(header, name: "Cluster child") else { return false }
        readIndex += element.count
        if cluster?.pendingStart != nil {
            // Appended in place: a copy per element would make a long Cluster start quadratic.
            cluster?.pendingStart?.append(contentsOf: element)
            let key = decidingBlockKeyframe(element, header: header)
            if key != nil || (cluster?.pendingStart?.count ?? 0) > maxPendingClusterStart, let pending = cluster?.pendingStart {
                cluster?.pendingStart = nil
                outputs.append(.fragment(WebMFragment(bytes: pending, startsCluster: true, isKeyframe: key ?? false)))
            }
        } else if cluster?.awaitingDecision == true, let key = decidingBlockKeyframe(element, header: header) {
            cluster?.awaitingDecision = false
            outputs.append(.fragment(WebMFragment(bytes: Array(element), startsCluster: false, isKeyframe: false, makesClusterAJoinPoint: key)))
        } else {
            outputs.append(.fragment(WebMFragment(bytes: Array(element), startsCluster: false, isKeyframe: false)))
        }
        return true
    }

    private mutating func closeCluster(into outputs: inout [WebMSegmenterOutput]) {
        if let pending = cluster?.pendingStart {
            outputs.append(.fragment(WebMFragment(bytes: pending, startsCluster: true, isKeyframe: !hasVideo)))
        }
        cluster = nil
    }

    /// For a block of the deciding track (the video track, or any track without video): whether
    /// it is a keyframe. nil for anything else.
    private func decidingBlockKeyframe(_ element: ArraySlice<UInt8>, header: EBMLElementHeader) -> Bool? {
        element.withUnsafeBufferPointer { bytes -> Bool? in
            let payload = header.headerLength
            switch header.id {
            case EBMLID.simpleBlock:
                guard case .value(let track, let length, _) = EBML.readVint(bytes, at: payload, maxLength: 8, keepMarker: false),
                      payload + length + 2 < bytes.count
                else { return nil }
                guard decidingTrack == nil || decidingTrack == track else { return nil }
                return bytes[payload + length + 2] & 0x80 != 0
            case EBMLID.blockGroup:
                var track: UInt64?
                var hasReference = false
                EBML.forEachChild(bytes, from: payload, to: bytes.count) { id, start, _ in
                    if id == EBMLID.block, case .value(let number, _, _) = EBML.readVint(bytes, at: start, maxLength: 8, keepMarker: false) {
                        track = number
                    }
                    if id == EBMLID.referenceBlock { hasReference = true }
                }
                guard let track, decidingTrack == nil || decidingTrack == track else { return nil }
                return !hasReference
            default:
                return nil
            }
        }
    }

    /// Like `header()`, but refuses non-EBML input from its very first byte instead of waiting.
    private func peekHeaderOrFirstByteCheck() throws(WebMError) -> EBMLElementHeader? {
        if readIndex < buffer.count, buffer[readIndex] != 0x1A {
            throw error(.notWebM, at: readIndex, "not WebM: the stream must start with an EBML header (1A 45 DF A3)")
        }
        let prefix: [UInt8] = [0x1A, 0x45, 0xDF, 0xA3]
        let available = min(4, buffer.count - readIndex)
        if available > 0, !buffer[readIndex..<readIndex + available].elementsEqual(prefix.prefix(available)) {
            throw error(.notWebM, at: readIndex, "not WebM: the stream must start with an EBML header (1A 45 DF A3)")
        }
        return try header()
    }

    private func checkDocType(_ element: ArraySlice<UInt8>, header: EBMLElementHeader) throws(WebMError) {
        let docType = element.withUnsafeBufferPointer { bytes -> String? in
            var found: String?
            EBML.forEachChild(bytes, from: header.headerLength, to: bytes.count) { id, start, length in
                if id == EBMLID.docType {
                    found = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<start + length]), as: UTF8.self).trimmingNulls()
                }
            }
            return found
        }
        switch docType {
        case "webm": return
        case nil: throw error(.notWebM, at: readIndex, "the EBML header has no DocType")
        case let other?:
            throw error(.unsupportedDocType, at: readIndex, "DocType \"\(other)\" is not WebM: browsers cannot play it through Media Source Extensions (record video/webm with VP8, VP9 or AV1)")
        }
    }
}

func hex(_ value: UInt32) -> String { String(value, radix: 16, uppercase: true) }
