import Foundation
import Testing
@testable import LoadGenerator

@Suite("The load generator's replayed stream and its check of a viewer's bytes")
struct LoadGeneratorTests {
    /// The committed MediaRecorder recording and its chunk sizes (shared with the WebM tests).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../WebMTests/Fixtures")

    static func recording() throws -> (bytes: [UInt8], chunks: [Int]) {
        let bytes = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent("vp8-opus.webm")))
        struct Chunks: Decodable { var chunks: [Int] }
        let chunks = try JSONDecoder().decode(Chunks.self, from: Data(contentsOf: fixtures.appendingPathComponent("vp8-opus.webm.chunks.json")))
        return (bytes, chunks.chunks)
    }

    static func stream(chunks minimum: Int = 200) throws -> PublishedStream {
        let (bytes, sizes) = try recording()
        return try PublishedStream(recording: bytes, chunkSizes: sizes, minimumChunks: minimum)
    }

    @Test func theStreamRepeatsTheRecordingWithAdvancingUniqueClusters() throws {
        let (recording, _) = try Self.recording()
        let stream = try Self.stream()
        #expect(stream.chunkEnds.count >= 200)
        #expect(stream.chunkEnds.last == stream.bytes.count)
        #expect(Array(stream.bytes.prefix(stream.initSegmentLength)) == Array(recording.prefix(stream.initSegmentLength)))
        // Every Cluster starts with its ID and a timecode that only grows, so each is unique.
        var timecodes: [UInt64] = []
        for start in stream.clusterStarts {
            #expect(Array(stream.bytes[start..<start + 4]) == [0x1F, 0x43, 0xB6, 0x75])
            #expect(Array(stream.bytes[start + 12..<start + 14]) == [0xE7, 0x84])
            timecodes.append(stream.bytes[start + 14..<start + 18].reduce(0) { $0 << 8 | UInt64($1) })
        }
        #expect(timecodes == timecodes.sorted() && Set(timecodes).count == timecodes.count)
        // Chunks are contiguous and follow the recording's sizes.
        #expect(stream.chunk(0).count + stream.chunk(1).count == stream.chunkEnds[1])
    }

    @Test func aViewerThatFollowsTheStreamIsByteExactAndCompletesEachChunkOnce() throws {
        let stream = try Self.stream()
        var check = ViewerCheck()
        check.text(#"{"type":"hello","topic":"t"}"#)
        check.text(#"{"type":"reset","session":"s","mimeType":"video/webm"}"#)
        stream.bytes.withUnsafeBytes { all in
            _ = check.binary(UnsafeRawBufferPointer(rebasing: all[0..<stream.initSegmentLength]), stream: stream)
        }
        #expect(check.phase == .locating)
        // Join at the third Cluster, then take the rest in pieces cut at element-ish places.
        let join = stream.clusterStarts[2]
        var completed: [Int] = []
        var offset = join
        while offset < stream.bytes.count {
            let end = min(stream.bytes.count, offset + 777)
            stream.bytes.withUnsafeBytes { all in
                completed += check.binary(UnsafeRawBufferPointer(rebasing: all[offset..<end]), stream: stream).map(\.chunk)
            }
            offset = end
        }
        #expect(check.mismatches == 0)
        #expect(check.bytesVerified == stream.initSegmentLength + stream.bytes.count - join)
        #expect(completed == completed.sorted() && Set(completed).count == completed.count)
        #expect(completed.count > 150)
    }

    @Test func alteredBytesAndAStartOutsideAClusterAreMismatches() throws {
        let stream = try Self.stream()
        var check = ViewerCheck()
        check.text(#"{"type":"reset","session":"s","mimeType":"video/webm"}"#)
        var initSegment = Array(stream.bytes.prefix(stream.initSegmentLength))
        initSegment.withUnsafeBytes { _ = check.binary($0, stream: stream) }
        // Not a Cluster start.
        let middle = Array(stream.bytes[stream.clusterStarts[1] + 20..<stream.clusterStarts[1] + 60])
        middle.withUnsafeBytes { _ = check.binary($0, stream: stream) }
        #expect(check.mismatches == 1)
        // A Cluster start, then a byte flipped in what follows.
        let start = stream.clusterStarts[3]
        Array(stream.bytes[start..<start + 100]).withUnsafeBytes { _ = check.binary($0, stream: stream) }
        var next = Array(stream.bytes[start + 100..<start + 200])
        next[50] ^= 0xFF
        next.withUnsafeBytes { _ = check.binary($0, stream: stream) }
        #expect(check.mismatches == 2)
        #expect(check.firstMismatch != nil)
        // A wrong init segment after a reset.
        check.text(#"{"type":"reset","session":"s2","mimeType":"video/webm"}"#)
        initSegment[10] ^= 1
        initSegment.withUnsafeBytes { _ = check.binary($0, stream: stream) }
        #expect(check.mismatches == 3)
    }

    @Test func aSkippedNoticeIsCountedAndTheViewerPicksUpAtALaterCluster() throws {
        let stream = try Self.stream()
        var check = ViewerCheck()
        check.text(#"{"type":"reset","session":"s","mimeType":"video/webm"}"#)
        Array(stream.bytes.prefix(stream.initSegmentLength)).withUnsafeBytes { _ = check.binary($0, stream: stream) }
        let first = stream.clusterStarts[1]
        Array(stream.bytes[first..<first + 50]).withUnsafeBytes { _ = check.binary($0, stream: stream) }
        check.text(#"{"type":"skipped","fragments":7}"#)
        let later = stream.clusterStarts[9]
        Array(stream.bytes[later..<later + 50]).withUnsafeBytes { _ = check.binary($0, stream: stream) }
        #expect(check.skippedFragments == 7)
        #expect(check.mismatches == 0)
        #expect(check.phase == .following(offset: later + 50))
    }

    @Test func aRecordingThatIsNotWebMIsRefused() {
        #expect(throws: LoadGeneratorError.self) {
            try PublishedStream(recording: Array("not webm at all".utf8), chunkSizes: [10], minimumChunks: 5)
        }
    }
}
