import Testing
@testable import WebM

/// Recordings cut out of real MediaRecorder streams: the Cluster scanner, fed in any pieces, finds
/// what a whole-file reader finds; the file built around a run of Clusters is well formed, its
/// SeekHead and Cues point where they say, and its Clusters are the published bytes.
@Suite("WebM recordings")
struct WebMRecordingTests {
    static let fixtures: [Fixture] = Fixture.webmNames.compactMap { try? Fixture($0) }

    /// The init segment and the media after it, as the segmenter splits the recording.
    static func split(_ fixture: Fixture) throws -> (initSegment: WebMInitSegment, media: [UInt8]) {
        var segmenter = WebMSegmenter()
        _ = try segmenter.append(fixture.bytes)
        let initSegment = try #require(segmenter.initSegment)
        #expect(Array(fixture.bytes.prefix(initSegment.bytes.count)) == initSegment.bytes)
        return (initSegment, Array(fixture.bytes[initSegment.bytes.count...]))
    }

    static func scan(_ pieces: [ArraySlice<UInt8>], videoTrack: UInt64?) throws -> WebMClusterScanner {
        var scanner = WebMClusterScanner(videoTrack: videoTrack)
        for piece in pieces { try scanner.scan(piece) }
        return scanner
    }

    @Test(arguments: fixtures)
    func theScannerFindsTheClustersInAnyPieces(_ fixture: Fixture) throws {
        let (initSegment, media) = try Self.split(fixture)
        let video = initSegment.videoTrack?.number
        let whole = try Self.scan([media[...]], videoTrack: video)
        let independent = IndependentWebMReader(fixture.bytes)
        #expect(whole.clusters.count == independent.clusters.count)
        #expect(whole.clusters.map { $0.startsWithKeyframe ?? false } == independent.clusters.map(\.flagKeyframe))
        for cluster in whole.clusters {
            #expect(Array(media[Int(cluster.position)..<Int(cluster.position) + 4]) == [0x1F, 0x43, 0xB6, 0x75])
            #expect(cluster.timecode != nil)
        }
        #expect(whole.clusters.first?.startsWithKeyframe == true)
        #expect(whole.position == Int64(media.count))
        let times = whole.clusters.compactMap(\.timecode)
        #expect(times == times.sorted(), "Cluster timecodes rise")
        #expect((whole.latestBlockTime ?? 0) >= Int64(times.last ?? 0))

        var random = SplitMix64(state: 9)
        var sizes: [Int] = []
        while sizes.reduce(0, +) < media.count { sizes.append(Int.random(in: 1...700, using: &random)) }
        for pieces in [cut(media, sizes: sizes), cut(media, sizes: Array(repeating: 1, count: media.count))] {
            let scanned = try Self.scan(pieces, videoTrack: video)
            #expect(scanned.clusters == whole.clusters)
            #expect(scanned.latestBlockTime == whole.latestBlockTime)
        }
    }

    @Test func garbageIsAnErrorNotACrash() {
        var scanner = WebMClusterScanner(videoTrack: 1)
        #expect(throws: WebMError.self) { try scanner.scan([0x00, 0x00, 0x00, 0x00]) }
        var unknown = WebMClusterScanner(videoTrack: 1)
        #expect(throws: WebMError.self) { try unknown.scan([0xEC, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) }
        var shortBlock = WebMClusterScanner(videoTrack: 1)
        #expect(throws: WebMError.self) { try shortBlock.scan([0x1F, 0x43, 0xB6, 0x75, 0xFF, 0xA3, 0x82, 0x81, 0x00]) }
    }

    /// The file made of the Clusters from the `from`-th keyframe Cluster on.
    static func recording(_ fixture: Fixture, fromKeyframe from: Int) throws
        -> (file: [UInt8], body: [UInt8], recording: WebMRecording, clusters: [WebMRecording.Cluster]) {
        let (initSegment, media) = try split(fixture)
        let video = initSegment.videoTrack?.number
        let scanned = try scan([media[...]], videoTrack: video)
        let keyframes = scanned.clusters.filter { $0.startsWithKeyframe == true }
        let start = try #require(keyframes.dropFirst(from).first).position
        let body = Array(media[Int(start)...])
        let clusters = try scan([body[...]], videoTrack: video).clusters
        let duration = Double((scanned.latestBlockTime ?? 0) - Int64(clusters.first?.timecode ?? 0))
        let recording = try WebMRecording(initSegment: initSegment.bytes, videoTrack: video, clusters: clusters,
                                          bodyLength: Int64(body.count), durationTicks: duration)
        var patched = body
        WebMRecording.apply(recording.patches(for: clusters), to: &patched, at: 0)
        return (recording.header + patched, body, recording, clusters)
    }

    @Test(arguments: fixtures)
    func aWholeRecordingKeepsItsBytes(_ fixture: Fixture) throws {
        let (file, body, recording, _) = try Self.recording(fixture, fromKeyframe: 0)
        #expect(recording.timecodeBase == 0)
        #expect(Array(file.suffix(body.count)) == body, "a recording from its start is copied byte for byte")
        try Self.checkStructure(file, recording: recording)
    }

    @Test(arguments: fixtures)
    func aRecordingFromALaterKeyframeStartsAtZero(_ fixture: Fixture) throws {
        let (initSegment, _) = try Self.split(fixture)
        let (file, body, recording, clusters) = try Self.recording(fixture, fromKeyframe: 1)
        #expect(recording.timecodeBase > 0)
        let rescanned = try Self.scan([file[recording.header.count...]], videoTrack: initSegment.videoTrack?.number)
        #expect(rescanned.clusters.first?.timecode == 0)
        #expect(rescanned.clusters.map { $0.timecode.map { $0 + recording.timecodeBase } } == clusters.map(\.timecode))
        // Only the Timecode values changed, in place.
        let changed = zip(file[recording.header.count...], body).filter { $0 != $1 }.count
        #expect(changed > 0 && changed <= clusters.count * 8)
        try Self.checkStructure(file, recording: recording)
        let independent = IndependentWebMReader(file)
        #expect(independent.clusters.count == clusters.count)
        #expect(independent.clusters.first?.flagKeyframe == true)
    }

    @Test func patchesApplyAcrossPieces() {
        let patches = [WebMRecording.Patch(position: 3, bytes: [9, 9, 9])]
        var a: [UInt8] = [0, 0, 0, 0]
        var b: [UInt8] = [1, 1, 1, 1]
        WebMRecording.apply(patches, to: &a, at: 0)
        WebMRecording.apply(patches, to: &b, at: 4)
        #expect(a == [0, 0, 0, 9])
        #expect(b == [9, 9, 1, 1])
    }

    /// The Segment, SeekHead, Info's Duration and Cues, read back from the bytes.
    static func checkStructure(_ file: [UInt8], recording: WebMRecording) throws {
        let top = Walker(bytes: file)
        let ebml = try #require(top.element(at: 0))
        let segment = try #require(top.element(at: ebml.end))
        #expect(segment.id == EBMLID.segment)
        #expect(segment.size == nil, "the Segment's size is unknown, like its Clusters'")
        var children: [UInt32: Walker.Element] = [:]
        var index = segment.dataStart
        while index < recording.header.count, let child = top.element(at: index), child.size != nil {
            children[child.id] = child
            index = child.end
        }
        #expect(index == recording.header.count, "the header ends where the first Cluster starts")
        #expect(top.element(at: recording.header.count)?.id == EBMLID.cluster)
        let seekHead = try #require(children[EBMLID.seekHead])
        for seek in top.children(of: seekHead) {
            let fields = top.children(of: seek)
            let id = try #require(fields.first { $0.id == WebMRecording.seekID }).data(in: file).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let position = try #require(fields.first { $0.id == WebMRecording.seekPosition }).uint(in: file)
            #expect(top.element(at: segment.dataStart + Int(position))?.id == id, "SeekHead entry for \(String(id, radix: 16))")
        }
        let info = try #require(children[EBMLID.info])
        let duration = try #require(top.children(of: info).first { $0.id == WebMRecording.duration })
        #expect(Double(bitPattern: duration.uint(in: file)) > 0)
        let cues = try #require(children[WebMRecording.cues])
        let points = top.children(of: cues)
        #expect(!points.isEmpty)
        for point in points {
            let positions = try #require(top.children(of: point).first { $0.id == WebMRecording.cueTrackPositions })
            let at = try #require(top.children(of: positions).first { $0.id == WebMRecording.cueClusterPosition }).uint(in: file)
            #expect(top.element(at: segment.dataStart + Int(at))?.id == EBMLID.cluster, "a Cue points at a Cluster")
        }
    }

    /// A minimal reader of element headers, separate from the code under test.
    struct Walker {
        let bytes: [UInt8]
        struct Element {
            var id: UInt32
            var dataStart: Int
            var size: Int?
            var end: Int { dataStart + (size ?? 0) }
            func data(in bytes: [UInt8]) -> ArraySlice<UInt8> { bytes[dataStart..<end] }
            func uint(in bytes: [UInt8]) -> UInt64 { data(in: bytes).reduce(0) { $0 << 8 | UInt64($1) } }
        }

        func element(at index: Int) -> Element? {
            guard index < bytes.count, bytes[index] != 0 else { return nil }
            let idLength = bytes[index].leadingZeroBitCount + 1
            guard index + idLength < bytes.count else { return nil }
            let id = bytes[index..<index + idLength].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let first = bytes[index + idLength]
            let sizeLength = first.leadingZeroBitCount + 1
            guard index + idLength + sizeLength <= bytes.count else { return nil }
            var size = UInt64(first & (0xFF >> sizeLength))
            for i in 1..<sizeLength { size = size << 8 | UInt64(bytes[index + idLength + i]) }
            let unknown = size == (UInt64(1) << (7 * UInt64(sizeLength))) - 1
            return Element(id: id, dataStart: index + idLength + sizeLength, size: unknown ? nil : Int(size))
        }

        func children(of parent: Element) -> [Element] {
            var result: [Element] = []
            var index = parent.dataStart
            while index < parent.end, let child = element(at: index) {
                result.append(child)
                index = child.end
            }
            return result
        }
    }
}
