import Foundation

/// Checks one viewer's messages against the published stream, free of I/O: the init segment after
/// each reset, then bytes that continue the stream exactly from a Cluster start. Yields the chunks
/// each binary message completes, for latency.
///
/// A viewer's bytes are an exact suffix of what was published: after a `reset` it gets the init
/// segment, then bytes from a Cluster start on; after `skipped` (it was too slow) it picks up again
/// at a later Cluster start.
public struct ViewerCheck: Sendable {
    public enum Phase: Sendable, Equatable {
        /// Before the first reset.
        case waiting
        case expectingInitSegment
        /// The next binary message must start a Cluster.
        case locating
        case following(offset: Int)
    }

    public private(set) var phase: Phase = .waiting
    /// Bytes that matched the published stream.
    public private(set) var bytesVerified = 0
    /// Binary messages that did not match the stream where they had to.
    public private(set) var mismatches = 0
    /// Fragments the relay reported skipping for this viewer (`skipped` notices).
    public private(set) var skippedFragments = 0
    public private(set) var resets = 0
    public private(set) var firstMismatch: String?

    public init() {}

    private struct Notice: Decodable {
        var type: String
        var fragments: Int?
    }

    /// A text message from the relay.
    public mutating func text(_ text: String) {
        guard let notice = try? JSONDecoder().decode(Notice.self, from: Data(text.utf8)) else { return }
        switch notice.type {
        case "reset":
            resets += 1
            phase = .expectingInitSegment
        case "skipped":
            skippedFragments += notice.fragments ?? 1
            phase = .locating
        default:
            break
        }
    }

    /// A binary message; returns the chunks it completes (empty when it completes none, or did not match).
    public mutating func binary(_ data: UnsafeRawBufferPointer, stream: PublishedStream) -> ArraySlice<(offset: Int, chunk: Int)> {
        switch phase {
        case .waiting:
            fail("bytes before any reset")
        case .expectingInitSegment:
            if data.count == stream.initSegmentLength, stream.matches(data, at: 0) {
                bytesVerified += data.count
                phase = .locating
            } else {
                fail("the init segment (\(data.count) bytes) differs from the published one")
            }
        case .locating:
            guard let start = stream.clusterStart(matching: data) else {
                fail("\(data.count) bytes after a (re)start do not begin at a published Cluster")
                return []
            }
            bytesVerified += data.count
            phase = .following(offset: start + data.count)
            return stream.chunksCompleted(after: start, through: start + data.count)
        case .following(let offset):
            guard stream.matches(data, at: offset) else {
                fail("\(data.count) bytes at offset \(offset) differ from the published stream")
                phase = .locating
                return []
            }
            bytesVerified += data.count
            phase = .following(offset: offset + data.count)
            return stream.chunksCompleted(after: offset, through: offset + data.count)
        }
        return []
    }

    private mutating func fail(_ detail: String) {
        mismatches += 1
        if firstMismatch == nil { firstMismatch = detail }
    }
}
