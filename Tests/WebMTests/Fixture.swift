import Foundation
import WebM

/// A real MediaRecorder recording committed under Fixtures/ (see scripts/record_fixtures.py),
/// with the chunk sizes the browser delivered it in.
struct Fixture: CustomStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    let recordedChunkSizes: [Int]

    static let webmNames = ["vp8-opus.webm", "vp9.webm", "av1.webm", "vp8-video-only.webm"]

    init(_ name: String) throws {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
              let chunksURL = Bundle.module.url(forResource: name + ".chunks", withExtension: "json", subdirectory: "Fixtures")
        else { throw FixtureMissing(name: name) }
        self.name = name
        bytes = Array(try Data(contentsOf: url))
        struct Chunks: Decodable { let chunks: [Int] }
        recordedChunkSizes = try JSONDecoder().decode(Chunks.self, from: Data(contentsOf: chunksURL)).chunks
    }

    var description: String { name }
}

struct FixtureMissing: Error { let name: String }

/// Cuts `bytes` into consecutive chunks of the given sizes (the last chunk takes the rest).
func cut(_ bytes: [UInt8], sizes: [Int]) -> [ArraySlice<UInt8>] {
    var chunks: [ArraySlice<UInt8>] = []
    var index = 0
    for size in sizes where index < bytes.count {
        let end = min(bytes.count, index + size)
        chunks.append(bytes[index..<end])
        index = end
    }
    if index < bytes.count { chunks.append(bytes[index...]) }
    return chunks
}

/// A small deterministic generator so every run cuts the same "random" ways.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs the segmenter over the chunks and returns everything it emitted, finish included.
func segment(_ chunks: [ArraySlice<UInt8>]) throws -> [WebMSegmenterOutput] {
    var segmenter = WebMSegmenter()
    var outputs: [WebMSegmenterOutput] = []
    for chunk in chunks { outputs += try segmenter.append(chunk) }
    outputs += segmenter.finish()
    return outputs
}
