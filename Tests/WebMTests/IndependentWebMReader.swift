/// A deliberately separate, whole-file WebM reader used to check the streaming segmenter: it
/// walks a fully buffered recording recursively and reports, for each Cluster, whether its first
/// video block is a keyframe, judged both by the block flag and, for VP8/VP9, by the codec's own
/// frame header bits.
struct IndependentWebMReader {
    struct ClusterInfo: Equatable {
        var flagKeyframe: Bool
        /// nil when the codec's frame header is not checked (AV1).
        var bitstreamKeyframe: Bool?
    }

    let bytes: [UInt8]
    var videoTrack: UInt64?
    var videoCodec = ""
    var clusters: [ClusterInfo] = []

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var index = 0
        // EBML header
        guard let ebml = element(at: index) else { return }
        index = ebml.dataStart + Int(ebml.size ?? 0)
        guard let segment = element(at: index), segment.id == 0x1853_8067 else { return }
        index = segment.dataStart
        var currentCluster: ClusterInfo?
        var decided = false
        while index < bytes.count, let e = element(at: index) {
            switch e.id {
            case 0x1654_AE6B:  // Tracks
                readTracks(from: e.dataStart, to: e.dataStart + Int(e.size ?? 0))
                index = e.dataStart + Int(e.size ?? 0)
            case 0x1F43_B675:  // Cluster: step inside
                if let c = currentCluster { clusters.append(c) }
                currentCluster = ClusterInfo(flagKeyframe: false, bitstreamKeyframe: nil)
                decided = false
                index = e.dataStart
            case 0xA3:  // SimpleBlock
                let (track, trackLength) = vint(at: e.dataStart)
                if !decided, track == videoTrack {
                    decided = true
                    let flags = bytes[e.dataStart + trackLength + 2]
                    let frame = e.dataStart + trackLength + 3
                    currentCluster?.flagKeyframe = flags & 0x80 != 0
                    currentCluster?.bitstreamKeyframe = bitstreamKeyframe(frameStart: frame)
                }
                index = e.dataStart + Int(e.size ?? 0)
            default:
                index = e.dataStart + Int(e.size ?? 0)
            }
        }
        if let c = currentCluster { clusters.append(c) }
    }

    private func bitstreamKeyframe(frameStart: Int) -> Bool? {
        switch videoCodec {
        case "V_VP8":
            // RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
            return bytes[frameStart] & 0x01 == 0
        case "V_VP9":
            // VP9 uncompressed header: frame_marker(2) profile_low(1) profile_high(1)
            // [reserved_zero(1) if profile 3] show_existing_frame(1) frame_type(1), 0 = key.
            let byte = bytes[frameStart]
            let profile = Int((byte >> 5) & 1) | Int((byte >> 4) & 1) << 1
            var bit = 3
            if profile == 3 { bit -= 1 }
            if (byte >> bit) & 1 == 1 { return false }  // show_existing_frame
            return (byte >> (bit - 1)) & 1 == 0
        default:
            return nil
        }
    }

    private mutating func readTracks(from start: Int, to end: Int) {
        var index = start
        while index < end, let entry = element(at: index) {
            var inner = entry.dataStart
            var number: UInt64 = 0
            var type: UInt64 = 0
            var codec = ""
            while inner < entry.dataStart + Int(entry.size ?? 0), let child = element(at: inner) {
                let data = bytes[child.dataStart..<child.dataStart + Int(child.size ?? 0)]
                switch child.id {
                case 0xD7: number = data.reduce(0) { $0 << 8 | UInt64($1) }
                case 0x83: type = data.reduce(0) { $0 << 8 | UInt64($1) }
                case 0x86: codec = String(decoding: data, as: UTF8.self)
                default: break
                }
                inner = child.dataStart + Int(child.size ?? 0)
            }
            if type == 1, videoTrack == nil {
                videoTrack = number
                videoCodec = codec
            }
            index = entry.dataStart + Int(entry.size ?? 0)
        }
    }

    private func vint(at index: Int) -> (UInt64, Int) {
        let first = bytes[index]
        let length = first.leadingZeroBitCount + 1
        var value = UInt64(first & (0xFF >> length))
        for i in 1..<length { value = value << 8 | UInt64(bytes[index + i]) }
        return (value, length)
    }

    private func element(at index: Int) -> (id: UInt32, size: UInt64?, dataStart: Int)? {
        guard index < bytes.count else { return nil }
        let idLength = bytes[index].leadingZeroBitCount + 1
        var id: UInt32 = 0
        for i in 0..<idLength { id = id << 8 | UInt32(bytes[index + i]) }
        let sizeStart = index + idLength
        let (size, sizeLength) = vint(at: sizeStart)
        let unknown = size == (UInt64(1) << (7 * UInt64(sizeLength))) - 1
        return (id, unknown ? nil : size, sizeStart + sizeLength)
    }
}
