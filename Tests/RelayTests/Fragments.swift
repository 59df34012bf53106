import Foundation
@testable import Relay

/// Builds fragments for the pure fan-out tests.
enum Fragments {
    /// A minimal init segment with one VP8 video track, enough for a mime type.
    static let initSegment: [UInt8] = [
        0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x82, 0x81, 0x77,  // EBML header (DocType "w")
        0x16, 0x54, 0xAE, 0x6B, 0x8F,  // Tracks, 15 bytes
        0xAE, 0x8D,  // TrackEntry, 13 bytes
        0xD7, 0x81, 0x01,  // TrackNumber 1
        0x83, 0x81, 0x01,  // TrackType video
        0x86, 0x85, 0x56, 0x5F, 0x56, 0x50, 0x38,  // CodecID "V_VP8"
    ]

    static func key(_ session: String, _ seq: UInt64, size: Int = 10) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), isKeyframe: true,
                       initSegment: initSegment, relay: "r", bytes: Array(repeating: UInt8(seq & 0xFF), count: size))
    }

    static func delta(_ session: String, _ seq: UInt64, size: Int = 10) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), isKeyframe: false,
                       initSegment: nil, relay: "r", bytes: Array(repeating: UInt8(seq & 0xFF), count: size))
    }

    /// A fragment holding the keyframe that makes the Cluster opened at `from` a join point.
    static func joining(_ session: String, _ seq: UInt64, from: UInt64, size: Int = 10) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), isKeyframe: false,
                       initSegment: initSegment, relay: "r", bytes: Array(repeating: UInt8(seq & 0xFF), count: size), joinFrom: from)
    }

    /// A fragment whose join point is `at` bytes in (the end of a Cluster, then a keyframe Cluster):
    /// byte `i` holds `i`, so where a viewer starts shows in its first byte.
    static func keyAt(_ session: String, _ seq: UInt64, at: Int, size: Int = 10) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), joinAt: at,
                       initSegment: initSegment, relay: "r", bytes: (0..<size).map { UInt8($0 & 0xFF) })
    }

    /// A fragment holding the keyframe that makes the Cluster opened `offset` bytes into fragment
    /// `from` a join point.
    static func joining(_ session: String, _ seq: UInt64, from: UInt64, offset: Int, size: Int = 10) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), initSegment: initSegment, relay: "r",
                       bytes: Array(repeating: UInt8(seq & 0xFF), count: size), joinFrom: from, joinFromOffset: offset)
    }

    /// A fragment whose byte `i` holds `i`.
    static func counting(_ session: String, _ seq: UInt64, size: Int = 10) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), initSegment: nil, relay: "r",
                       bytes: (0..<size).map { UInt8($0 & 0xFF) })
    }

    static func end(_ session: String, _ seq: UInt64) -> StreamFragment {
        StreamFragment(session: session, sequence: seq, ingestMilliseconds: Int64(seq), isKeyframe: false,
                       initSegment: nil, relay: "r", bytes: [], isEnd: true)
    }
}

extension ViewerStreamState {
    /// Takes everything queued.
    mutating func drain() -> [ViewerFrame] {
        var frames: [ViewerFrame] = []
        while let frame = next() { frames.append(frame) }
        return frames
    }
}

extension ViewerFrame {
    /// The JSON `type` of a text frame, or "binary".
    var kind: String {
        switch self {
        case .binary: return "binary"
        case .text(let text):
            guard let range = text.range(of: #""type":""#) else { return "text" }
            return String(text[range.upperBound...].prefix { $0 != "\"" })
        }
    }
}
