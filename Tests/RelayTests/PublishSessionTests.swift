import Foundation
import Kafka
import NIOCore
import Testing
import WebM
@testable import Relay

@Suite("A publisher's chunks become one fragment each (several records when a topic's limit is smaller), with join points as byte positions")
struct PublishSessionTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../WebMTests/Fixtures")
    static let names = ["vp8-opus.webm", "vp9.webm", "av1.webm", "vp8-video-only.webm"]

    static func recording(_ name: String) throws -> (bytes: [UInt8], chunks: [Int]) {
        let bytes = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent(name)))
        struct Chunks: Decodable { var chunks: [Int] }
        let chunks = try JSONDecoder().decode(Chunks.self, from: Data(contentsOf: fixtures.appendingPathComponent(name + ".chunks.json")))
        return (bytes, chunks.chunks)
    }

    /// The recorded chunking, some fixed sizes and seeded random ones.
    static func chunkings(_ bytes: [UInt8], recorded: [Int]) -> [(String, [Int])] {
        var result = [("recorded", recorded), ("whole", [bytes.count])]
        for size in [1, 7, 1000, 4096] { result.append(("fixed \(size)", Array(repeating: size, count: bytes.count / size + 1))) }
        var seed: UInt64 = 7
        for round in 0..<6 {
            var sizes: [Int] = []
            var total = 0
            while total < bytes.count {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                let size = 1 + Int((seed >> 33) % UInt64([30, 300, 3000][round % 3]))
                sizes.append(size)
                total += size
            }
            result.append(("random \(round)", sizes))
        }
        return result
    }

    /// Where viewers can join, as offsets after the init segment, by the segmenter's own account.
    static func referenceJoinPoints(_ bytes: [UInt8]) throws -> [Int] {
        var segmenter = WebMSegmenter()
        var offset = 0
        var openCluster: Int?
        var points: [Int] = []
        for case .fragment(let fragment) in try segmenter.append(bytes) + segmenter.finish() {
            if fragment.startsCluster {
                openCluster = offset
                if fragment.isKeyframe { points.append(offset) }
            }
            if fragment.makesClusterAJoinPoint, let openCluster { points.append(openCluster) }
            offset += fragment.bytes.count
        }
        return points
    }

    static func session() throws -> PublishSession {
        PublishSession(number: 1, topic: try TopicName("cam"), remoteAddress: "test", userAgent: "", relayID: "r", limits: RelayLimits())
    }

    /// No record limit, and records of at most 16 KiB (a chunk of a keyframe is often larger).
    static let recordLimits = [Int.max, 16 << 10]

    /// The record's size as Kafka counts it, but for framing (under 100 bytes).
    static func recordBytes(_ fragment: StreamFragment) throws -> Int {
        let message = fragment.kafkaMessage(topic: try TopicName("cam"))
        return message.key.count + message.value.count + message.headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) }
    }

    @Test(arguments: names, recordLimits)
    func oneFragmentPerChunkCarryingTheStreamAndItsJoinPoints(name: String, limit: Int) throws {
        let (bytes, recorded) = try Self.recording(name)
        let reference = try Self.referenceJoinPoints(bytes)
        #expect(!reference.isEmpty)
        for (chunking, sizes) in Self.chunkings(bytes, recorded: recorded) {
            let session = try Self.session()
            var fragments: [StreamFragment] = []
            var index = 0
            var chunks = 0
            for size in sizes where index < bytes.count {
                let end = min(bytes.count, index + size)
                let received = try session.receive(bytes[index..<end], nowMilliseconds: 0, maxRecordBytes: limit)
                if limit == .max {
                    #expect(received.fragments.count <= 1, "\(name), \(chunking): one fragment per chunk at most")
                }
                for fragment in received.fragments {
                    #expect(try Self.recordBytes(fragment) <= limit - 100, "\(name), \(chunking): a record over the topic's limit")
                }
                fragments += received.fragments
                index = end
                chunks += 1
            }
            #expect(fragments.map(\.sequence) == Array(0..<UInt64(fragments.count)))
            if limit == .max { #expect(fragments.count <= chunks) }
            // The bytes, concatenated, are the stream after its init segment.
            var starts: [UInt64: Int] = [:]
            var stream: [UInt8] = []
            var joinPoints: [Int] = []
            for fragment in fragments {
                starts[fragment.sequence] = stream.count
                if let at = fragment.joinAt { joinPoints.append(stream.count + at) }
                if let from = fragment.joinFrom, let start = starts[from] { joinPoints.append(start + fragment.joinFromOffset) }
                #expect((fragment.joinAt != nil || fragment.joinFrom != nil) == (fragment.initSegment != nil))
                stream += fragment.bytes
            }
            let initLength = bytes.count - stream.count
            #expect(Array(bytes[initLength...]) == stream, "\(name), \(chunking): bytes differ")
            // Every join point is found; a chunk with two keyframe Clusters names its latest.
            #expect(Set(joinPoints).isSubset(of: Set(reference)), "\(name), \(chunking): \(joinPoints) not all in \(reference)")
            if chunking != "whole" {
                #expect(joinPoints.count >= reference.count * 2 / 3, "\(name), \(chunking): join points lost")
            }
        }
    }

    /// A viewer that arrives at any moment starts exactly at a Cluster that is a join point and
    /// then gets the stream byte for byte, whichever way the publisher chunked it.
    @Test(arguments: names, recordLimits)
    func aViewerJoiningAtAnyFragmentGetsTheStreamFromAJoinPoint(name: String, limit: Int) throws {
        let (bytes, recorded) = try Self.recording(name)
        let reference = Set(try Self.referenceJoinPoints(bytes))
        for (chunking, sizes) in Self.chunkings(bytes, recorded: recorded) where chunking != "fixed 1" {
            let session = try Self.session()
            var fragments: [StreamFragment] = []
            var index = 0
            for size in sizes where index < bytes.count {
                let end = min(bytes.count, index + size)
                fragments += try session.receive(bytes[index..<end], nowMilliseconds: 0, maxRecordBytes: limit).fragments
                index = end
            }
            let stream = fragments.flatMap(\.bytes)
            for arrival in stride(from: 0, to: fragments.count, by: max(1, fragments.count / 12)) {
                var cache = KeyframeCache(maxBytes: 8 << 20)
                var viewer = ViewerStreamState(maxQueuedBytes: 64 << 20)
                for (position, fragment) in fragments.enumerated() {
                    let joinGroup = cache.add(fragment) ? cache.fragments : []
                    if position == arrival {
                        for cached in cache.fragments { _ = viewer.offer(cached) }
                    } else if position > arrival {
                        _ = viewer.offer(fragment, joinGroup: joinGroup)
                    }
                }
                let received = viewer.drain().compactMap { frame -> [UInt8]? in
                    guard case .binary(let buffer) = frame else { return nil }
                    return Array(buffer.readableBytesView)
                }
                guard received.count > 1 else { continue }  // joined after the last join point
                let got = received.dropFirst().flatMap { $0 }  // after the init segment
                let start = stream.count - got.count
                #expect(start >= 0 && Array(stream[max(0, start)...]) == got, "\(name), \(chunking), arrival \(arrival): not a suffix")
                #expect(reference.contains(start), "\(name), \(chunking), arrival \(arrival): starts at \(start), not a join point")
            }
        }
    }
    /// A fragment far larger than the topic's records: cut into parts in order, the join point in
    /// the part holding its byte; nothing lost, nothing reordered.
    @Test func aKeyframeLargerThanARecordIsCutIntoConsecutiveRecords() throws {
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        let whole = FragmentAssembly(sequence: 10, openCluster: FragmentAssembly.Position(sequence: 10, offset: 2500),
                                     bytes: bytes, joinAt: 2500, joinFrom: nil)
        let (parts, open) = whole.split(maxBytes: 1000)
        #expect(parts.map(\.bytes.count) == [1000, 1000, 1000, 1000, 1000])
        #expect(parts.flatMap { Array($0.bytes) } == bytes)
        #expect(parts.map(\.joinAt) == [nil, nil, 500, nil, nil])
        #expect(open == FragmentAssembly.Position(sequence: 12, offset: 500))
        // A join point in an earlier fragment is named by the last part.
        let later = FragmentAssembly(sequence: 11, openCluster: nil, bytes: bytes, joinAt: nil,
                                     joinFrom: FragmentAssembly.Position(sequence: 9, offset: 40))
        let (laterParts, _) = later.split(maxBytes: 2000)
        #expect(laterParts.map(\.joinFrom) == [nil, nil, FragmentAssembly.Position(sequence: 9, offset: 40)])
        #expect(laterParts.map(\.bytes.count) == [2000, 2000, 1000])
        // Small enough: one part, as it was.
        let (single, sameOpen) = whole.split(maxBytes: 5000)
        #expect(single.count == 1 && single[0].joinAt == 2500 && sameOpen == FragmentAssembly.Position(sequence: 10, offset: 2500))
    }

    /// An init segment that would not leave room for media in a record is refused, clearly.
    @Test func anInitSegmentTooLargeForTheTopicsRecordsIsRefused() throws {
        let (bytes, _) = try Self.recording("vp8-opus.webm")
        let session = try Self.session()
        #expect(throws: RelayError.self) { try session.receive(bytes[...], nowMilliseconds: 0, maxRecordBytes: 2000) }
    }
}
