/// One track of a WebM recording, as declared in its Tracks element.
public struct WebMTrack: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case video, audio, other(UInt64)
    }

    public var number: UInt64
    public var kind: Kind
    /// Matroska codec ID, e.g. `V_VP8`, `V_VP9`, `V_AV1`, `A_OPUS`.
    public var codecID: String

    public init(number: UInt64, kind: Kind, codecID: String) {
        self.number = number
        self.kind = kind
        self.codecID = codecID
    }

    /// The codec name Media Source Extensions expects in a `codecs=` parameter.
    public var mseCodec: String {
        switch codecID {
        case "V_VP8": "vp8"
        case "V_VP9": "vp9"
        case "V_AV1": "av01.0.04M.08"
        case "A_OPUS": "opus"
        case "A_VORBIS": "vorbis"
        default: codecID.lowercased()
        }
    }
}

/// The init segment of a WebM stream: EBML header, Segment header, and every element before the
/// first Cluster (Info, Tracks, ...). A player needs exactly these bytes before any Cluster.
public struct WebMInitSegment: Equatable, Sendable {
    public var bytes: [UInt8]
    public var tracks: [WebMTrack]

    public init(bytes: [UInt8], tracks: [WebMTrack]) {
        self.bytes = bytes
        self.tracks = tracks
    }

    /// The first video track, which decides where keyframes are.
    public var videoTrack: WebMTrack? { tracks.first { $0.kind == .video } }

    /// MIME type for `MediaSource.addSourceBuffer`, e.g. `video/webm; codecs="vp8,opus"`.
    public var mimeType: String {
        let ordered = tracks.filter { $0.kind == .video } + tracks.filter { $0.kind == .audio }
        let codecs = ordered.map(\.mseCodec).joined(separator: ",")
        let type = videoTrack == nil ? "audio/webm" : "video/webm"
        return codecs.isEmpty ? type : "\(type); codecs=\"\(codecs)\""
    }

    /// Parses the tracks of an init segment (or of any buffer that holds a whole Tracks element).
    public static func parseTracks(in bytes: [UInt8]) -> [WebMTrack] {
        bytes.withUnsafeBufferPointer { buffer in
            var tracks: [WebMTrack] = []
            // Scan for the Tracks ID: it is unique in a well-formed init segment.
            var index = 0
            while index + 4 <= buffer.count {
                if buffer[index] == 0x16, buffer[index + 1] == 0x54, buffer[index + 2] == 0xAE, buffer[index + 3] == 0x6B,
                   case .success(let parsed) = EBML.readHeader(buffer, at: index), let header = parsed, let size = header.size
                {
                    let start = index + header.headerLength
                    let end = min(buffer.count, start + Int(size))
                    tracks = parseTrackEntries(buffer, from: start, to: end)
                    break
                }
                index += 1
            }
            return tracks
        }
    }

    static func parseTrackEntries(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> [WebMTrack] {
        var tracks: [WebMTrack] = []
        EBML.forEachChild(buffer, from: start, to: end) { id, payload, length in
            guard id == EBMLID.trackEntry else { return }
            var number: UInt64 = 0
            var type: UInt64 = 0
            var codec = ""
            EBML.forEachChild(buffer, from: payload, to: payload + length) { id, payload, length in
                switch id {
                case EBMLID.trackNumber: number = EBML.readUInt(buffer, from: payload, count: length) ?? 0
                case EBMLID.trackType: type = EBML.readUInt(buffer, from: payload, count: length) ?? 0
                case EBMLID.codecID:
                    codec = String(decoding: UnsafeBufferPointer(rebasing: buffer[payload..<payload + length]), as: UTF8.self)
                        .trimmingNulls()
                default: break
                }
            }
            let kind: WebMTrack.Kind = type == 1 ? .video : type == 2 ? .audio : .other(type)
            tracks.append(WebMTrack(number: number, kind: kind, codecID: codec))
        }
        return tracks
    }
}

extension String {
    func trimmingNulls() -> String {
        var s = Substring(self)
        while s.last == "\0" { s = s.dropLast() }
        return String(s)
    }
}
