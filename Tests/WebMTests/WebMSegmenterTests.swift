import Testing
@testable import WebM

@Suite("WebM segmenter on real MediaRecorder recordings")
struct WebMSegmenterFixtureTests {
    static let fixtures: [Fixture] = Fixture.webmNames.compactMap { try? Fixture($0) }

    @Test func fixturesArePresent() {
        #expect(Self.fixtures.count == Fixture.webmNames.count)
    }

    /// Many ways of cutting the input: as the browser did, whole, byte by byte, fixed sizes, and
    /// seeded random cuts (some of them tiny).
    static func chunkings(of fixture: Fixture) -> [(String, [ArraySlice<UInt8>])] {
        let bytes = fixture.bytes
        var result: [(String, [ArraySlice<UInt8>])] = [
            ("recorded", cut(bytes, sizes: fixture.recordedChunkSizes)),
            ("whole", [bytes[...]]),
            ("bytes", cut(bytes, sizes: Array(repeating: 1, count: bytes.count))),
        ]
        for size in [2, 3, 7, 100, 1000, 4096, 65536] {
            result.append(("fixed \(size)", cut(bytes, sizes: Array(repeating: size, count: bytes.count / size + 1))))
        }
        var rng = SplitMix64(state: 42)
        for round in 0..<20 {
            let limit = [5, 50, 500, 5000][round % 4]
            var sizes: [Int] = []
            var total = 0
            while total < bytes.count {
                let size = Int.random(in: 1...limit, using: &rng)
                sizes.append(size)
                total += size
            }
            result.append(("random \(round)", cut(bytes, sizes: sizes)))
        }
        return result
    }

    /// The stream and where viewers can join it, whatever the chunking: the init segment, the
    /// bytes, and the offsets of the Clusters that are join points (marked on the Cluster's first
    /// fragment, or by the keyframe that arrives in a later chunk).
    static func streamAndJoinPoints(_ outputs: [WebMSegmenterOutput]) -> (initSegment: [UInt8], bytes: [UInt8], joinPoints: [Int]) {
        var initSegment: [UInt8] = []
        var bytes: [UInt8] = []
        var joinPoints: [Int] = []
        var openCluster: Int?
        for output in outputs {
            switch output {
            case .initSegment(let segment):
                initSegment = segment.bytes
            case .fragment(let fragment):
                if fragment.startsCluster {
                    openCluster = bytes.count
                    if fragment.isKeyframe { joinPoints.append(bytes.count) }
                }
                if fragment.makesClusterAJoinPoint, let openCluster { joinPoints.append(openCluster) }
                bytes += fragment.bytes
            }
        }
        return (initSegment, bytes, joinPoints)
    }

    @Test(arguments: fixtures)
    func everyChunkingGivesTheSameStreamAndJoinPoints(fixture: Fixture) throws {
        let reference = Self.streamAndJoinPoints(try segment([fixture.bytes[...]]))
        #expect(!reference.joinPoints.isEmpty)
        for (name, chunks) in Self.chunkings(of: fixture) {
            let outputs = Self.streamAndJoinPoints(try segment(chunks))
            #expect(outputs.initSegment == reference.initSegment, "chunking \(name) of \(fixture): init segment differs")
            #expect(outputs.bytes == reference.bytes, "chunking \(name) of \(fixture): bytes differ")
            #expect(outputs.joinPoints == reference.joinPoints, "chunking \(name) of \(fixture): join points differ")
        }
    }

    /// Nothing complete waits for the next chunk: MediaRecorder ends its chunks just inside the
    /// next element, often right after a new Cluster's first audio block.
    @Test(arguments: fixtures)
    func noCompleteElementIsHeldForTheNextChunk(fixture: Fixture) throws {
        var segmenter = WebMSegmenter()
        var delayedJoinPoints = 0
        for chunk in cut(fixture.bytes, sizes: fixture.recordedChunkSizes) {
            for case .fragment(let fragment) in try segmenter.append(chunk) where fragment.makesClusterAJoinPoint {
                delayedJoinPoints += 1
            }
            #expect(!segmenter.holdsClusterStart, "a Cluster start waited for the next chunk in \(fixture)")
        }
        if fixture.name == "vp8-opus" {
            #expect(delayedJoinPoints > 0, "the recording's Clusters open with audio at chunk ends")
        }
    }

    @Test(arguments: fixtures)
    func fragmentsConcatenateBackToTheInput(fixture: Fixture) throws {
        let outputs = try segment(cut(fixture.bytes, sizes: fixture.recordedChunkSizes))
        var joined: [UInt8] = []
        var initCount = 0
        for output in outputs {
            switch output {
            case .initSegment(let segment):
                initCount += 1
                #expect(joined.isEmpty, "init segment must come first")
                joined += segment.bytes
            case .fragment(let fragment):
                joined += fragment.bytes
            }
        }
        #expect(initCount == 1)
        #expect(joined == fixture.bytes)
    }

    @Test(arguments: fixtures)
    func keyframeMarksMatchAnIndependentReading(fixture: Fixture) throws {
        let reader = IndependentWebMReader(fixture.bytes)
        #expect(reader.videoTrack != nil)
        #expect(reader.clusters.count >= 3, "a 3.5 s recording has several Clusters")
        let fragments = try segment([fixture.bytes[...]]).compactMap { output -> WebMFragment? in
            if case .fragment(let f) = output { return f } else { return nil }
        }
        let clusterStarts = fragments.filter(\.startsCluster)
        #expect(clusterStarts.count == reader.clusters.count)
        #expect(clusterStarts.map(\.isKeyframe) == reader.clusters.map(\.flagKeyframe))
        // Where the codec's own frame header can be read, it agrees with the block flag.
        for cluster in reader.clusters {
            if let bitstream = cluster.bitstreamKeyframe { #expect(bitstream == cluster.flagKeyframe) }
        }
        // 1 s keyframe interval over ~3.5 s: 3 or 4 keyframe Clusters, the first one at the start.
        let keyframes = clusterStarts.filter(\.isKeyframe).count
        #expect((3...5).contains(keyframes), "\(keyframes) keyframe clusters")
        #expect(clusterStarts.first?.isKeyframe == true)
        #expect(fragments.first?.startsCluster == true)
        #expect(fragments.filter { $0.isKeyframe && !$0.startsCluster }.isEmpty)
    }

    @Test(arguments: fixtures)
    func initSegmentDescribesTheTracks(fixture: Fixture) throws {
        guard case .initSegment(let initSegment)? = try segment([fixture.bytes[...]]).first else {
            Issue.record("no init segment")
            return
        }
        #expect(initSegment.bytes.count < 400)
        let expected: [String: String] = [
            "vp8-opus.webm": #"video/webm; codecs="vp8,opus""#,
            "vp9.webm": #"video/webm; codecs="vp9,opus""#,
            "av1.webm": #"video/webm; codecs="av01.0.04M.08,opus""#,
            "vp8-video-only.webm": #"video/webm; codecs="vp8""#,
        ]
        #expect(initSegment.mimeType == expected[fixture.name])
    }
}

@Suite("WebM segmenter refuses what browsers could not play")
struct WebMSegmenterErrorTests {
    func firstError(_ chunks: [[UInt8]]) -> WebMError? {
        var segmenter = WebMSegmenter()
        do {
            for chunk in chunks { _ = try segmenter.append(chunk) }
        } catch {
            return error
        }
        return nil
    }

    @Test func textIsNotWebM() {
        let error = firstError([Array("hello, relay".utf8)])
        #expect(error?.kind == .notWebM)
        #expect(error?.offset == 0)
        #expect(error?.description.contains("EBML header") == true)
    }

    @Test func aSingleWrongFirstByteIsRefusedAtOnce() {
        #expect(firstError([[0x00]])?.kind == .notWebM)
        #expect(firstError([[0x1A, 0x45, 0x00]])?.kind == .notWebM)
        #expect(firstError([[0x1A]]) == nil, "a 1-byte first chunk is normal for MediaRecorder")
    }

    @Test func matroskaFromTheH264RecorderIsRefusedWithTheReason() throws {
        let mkv = try Fixture("h264.mkv")
        let error = firstError(cut(mkv.bytes, sizes: mkv.recordedChunkSizes).map(Array.init))
        #expect(error?.kind == .unsupportedDocType)
        #expect(error?.description.contains("matroska") == true)
    }

    @Test func brokenElementIDInAClusterSaysWhere() throws {
        var bytes = try Fixture("vp8-opus.webm").bytes
        // Find the second Cluster and break the element right after its header.
        let clusterID: [UInt8] = [0x1F, 0x43, 0xB6, 0x75]
        let positions = (0..<bytes.count - 4).filter { Array(bytes[$0..<$0 + 4]) == clusterID }
        #expect(positions.count > 2)
        let broken = positions[1] + 12  // ID (4) + unknown size (8)
        bytes[broken] = 0x00
        let error = firstError([bytes])
        #expect(error?.kind == .invalidElement)
        #expect(error?.offset == Int64(broken))
    }

    @Test func clusterBeforeTracksIsRefused() throws {
        let bytes = try Fixture("vp8-video-only.webm").bytes
        guard let tracks = (0..<bytes.count - 4).first(where: { Array(bytes[$0..<$0 + 4]) == [0x16, 0x54, 0xAE, 0x6B] }),
              let cluster = (0..<bytes.count - 4).first(where: { Array(bytes[$0..<$0 + 4]) == [0x1F, 0x43, 0xB6, 0x75] })
        else {
            Issue.record("fixture without Tracks/Cluster")
            return
        }
        let withoutTracks = Array(bytes[..<tracks] + bytes[cluster...])
        let error = firstError([withoutTracks])
        #expect(error?.kind == .missingTracks)
        #expect(error?.offset == Int64(tracks))
    }

    @Test func oversizedBlockIsRefusedBeforeItIsBuffered() throws {
        let bytes = try Fixture("vp8-opus.webm").bytes
        guard let cluster = (0..<bytes.count - 4).first(where: { Array(bytes[$0..<$0 + 4]) == [0x1F, 0x43, 0xB6, 0x75] }) else {
            Issue.record("no cluster")
            return
        }
        // Cluster header, then a SimpleBlock announcing 1 GiB.
        let prefix = Array(bytes[..<(cluster + 12)])
        let hugeBlock: [UInt8] = [0xA3, 0x08, 0x40, 0x00, 0x00, 0x00]  // 4-byte size 0x40000000 (marker 0x08)
        var segmenter = WebMSegmenter(maxElementSize: 1 << 20)
        _ = try segmenter.append(prefix)
        #expect(throws: WebMError.self) { _ = try segmenter.append(hugeBlock) }
        #expect(segmenter.bufferedByteCount < 1024)
    }

    @Test func afterAnErrorTheSegmenterKeepsRefusing() {
        var segmenter = WebMSegmenter()
        #expect(throws: WebMError.self) { _ = try segmenter.append(Array("nope".utf8)) }
        #expect(throws: WebMError.self) { _ = try segmenter.append([0x1A, 0x45, 0xDF, 0xA3]) }
    }

    @Test func secondEBMLHeaderMidStreamIsRefused() throws {
        let bytes = try Fixture("vp8-video-only.webm").bytes
        let error = firstError([bytes, bytes])
        #expect(error?.kind == .unexpectedElement)
        #expect(error?.offset == Int64(bytes.count))
    }

    /// The EBML header of a real recording and a Segment of unknown size: the start of every
    /// MediaRecorder stream.
    static func streamStart() throws -> [UInt8] {
        let bytes = try Fixture("vp8-opus.webm").bytes
        guard let segment = (0..<bytes.count - 4).first(where: { Array(bytes[$0..<$0 + 4]) == [0x18, 0x53, 0x80, 0x67] }) else {
            return []
        }
        return Array(bytes[..<(segment + 12)])  // ID (4) + unknown size (8)
    }

    @Test func endlessElementsBeforeTheFirstClusterAreRefusedAtTheInitLimit() throws {
        var segmenter = WebMSegmenter(maxInitSegmentSize: 64 << 10)
        _ = try segmenter.append(try Self.streamStart())
        // 1 KiB Void elements, forever: the init segment would grow with each one.
        let void: [UInt8] = [0xEC, 0x43, 0xFC] + [UInt8](repeating: 0, count: 1020)
        var sent = 0
        var caught: WebMError?
        while sent < 1 << 20, caught == nil {
            do { _ = try segmenter.append(void) } catch { caught = error }
            sent += void.count
        }
        #expect(caught?.kind == .initSegmentTooLarge)
        #expect(sent <= (64 << 10) + void.count, "refused by the element that would cross the limit, not later")
        #expect(caught?.description.contains("65536") == true, "the message says the limit")
    }

    @Test func aHugeElementBeforeTheFirstClusterIsRefusedByItsDeclaredSize() throws {
        var segmenter = WebMSegmenter(maxInitSegmentSize: 64 << 10)
        _ = try segmenter.append(try Self.streamStart())
        // An Info element announcing 100 MB: refused from its header alone, nothing buffered.
        let hugeInfo: [UInt8] = [0x15, 0x49, 0xA9, 0x66, 0x08, 0x05, 0xF5, 0xE1, 0x00]
        #expect(throws: WebMError.self) { _ = try segmenter.append(hugeInfo) }
        #expect(segmenter.bufferedByteCount < 64)
    }

    @Test func realInitSegmentsFitTheDefaultLimit() throws {
        for fixture in WebMSegmenterFixtureTests.fixtures {
            var segmenter = WebMSegmenter()
            _ = try segmenter.append(fixture.bytes)
            #expect(segmenter.initSegment != nil, "\(fixture)")
        }
    }
}
