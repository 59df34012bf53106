import ControlPlane
import Foundation
import Kafka
import Logging
import NIOCore
import WebM

/// What a first pass over a session finds: the file's header and length, the few bytes to
/// rewrite, and where in Kafka each part of the file comes from. Kept a while by the archive, so
/// the range requests of one player do not each read the session twice.
struct RecordingIndex: Sendable {
    let topic: String
    let session: RecordedSession
    let header: [UInt8]
    let bodyLength: Int64
    let durationTicks: Double
    let patches: [WebMRecording.Patch]
    /// The record where the file's first Cluster is, and the first offset not included.
    let startOffset: Int64
    let endOffset: Int64
    /// Records taken whole, every ``checkpointEvery``-th: where a range can start reading.
    let checkpoints: [(offset: Int64, position: Int64)]

    static let checkpointEvery = 16

    var contentLength: Int64 { Int64(header.count) + bodyLength }

    /// Reads the session's Clusters from its first keyframe at or after offset `from` to its end
    /// or `endOffset` (for a session still streaming: what Kafka held when the listing was made).
    static func build(_ session: RecordedSession, topic: String, from: Int64, until endOffset: Int64,
                      reader: ArchiveReader) async throws -> RecordingIndex {
        var cut = RecordingCut(session: session.id, endOffset: endOffset)
        var scanner: WebMClusterScanner?
        var bodyLength: Int64 = 0
        var problem: WebMError?
        var checkpoints: [(offset: Int64, position: Int64)] = []
        var whole = 0
        try await reader.read(from: from, until: endOffset) { message in
            let startedBefore = cut.start != nil
            let pieces = cut.take(StreamFragment(message), offset: message.offset)
            if startedBefore && !pieces.isEmpty {
                if whole % checkpointEvery == 0 { checkpoints.append((message.offset, bodyLength)) }
                whole += 1
            }
            for piece in pieces {
                if scanner == nil {
                    let tracks = WebMInitSegment.parseTracks(in: cut.initSegment ?? [])
                    scanner = WebMClusterScanner(videoTrack: tracks.first { $0.kind == .video }?.number)
                }
                do throws(WebMError) {
                    try scanner?.scan(piece.readableBytesView)
                } catch {
                    problem = error
                    return false
                }
                bodyLength += Int64(piece.readableBytes)
            }
            return !cut.finished
        }
        if let problem { throw RecordingError.unreadable(problem.description) }
        guard let start = cut.start, let initSegment = cut.initSegment, let scanner, !scanner.clusters.isEmpty else {
            throw RecordingError.noKeyframe(topic: topic, session: session.id)
        }
        let first = Int64(scanner.clusters.first?.timecode ?? 0)
        let duration = Double(max(0, (scanner.latestBlockTime ?? first) - first))
        let recording: WebMRecording
        do {
            recording = try WebMRecording(initSegment: initSegment, videoTrack: scanner.videoTrack, clusters: scanner.clusters,
                                          bodyLength: bodyLength, durationTicks: duration)
        } catch {
            throw RecordingError.unreadable(error.description)
        }
        return RecordingIndex(topic: topic, session: session, header: recording.header, bodyLength: bodyLength, durationTicks: duration,
                              patches: recording.patches(for: scanner.clusters), startOffset: start.offset, endOffset: endOffset,
                              checkpoints: checkpoints)
    }
}

/// One session of a topic as a WebM file (or a byte range of it), streamed from Kafka. The
/// archive indexes the session first (``RecordingIndex``: so the header can carry its Duration
/// and Cues, and the length is known); ``stream(_:)`` then reads it again and sends the header and
/// the Clusters as they come. Nothing but the index is held in memory.
public final class RecordingDownload: Sendable {
    private let index: RecordingIndex
    private let wanted: Locked<ClosedRange<Int64>>
    private let slot: TopicArchive.ReaderSlot

    /// How the requested times were found in the topic (nil: a whole session was asked for).
    public let timeSearch: TimeSearchMethod?

    init(index: RecordingIndex, range: ClosedRange<Int64>?, timeSearch: TimeSearchMethod? = nil, slot: TopicArchive.ReaderSlot) {
        self.index = index
        self.timeSearch = timeSearch
        wanted = Locked(range ?? 0...max(0, index.contentLength - 1))
        self.slot = slot
    }

    public var topic: String { index.topic }
    public var session: RecordedSession { index.session }
    /// The whole file's length.
    public var contentLength: Int64 { index.contentLength }
    /// The recording's length in TimecodeScale units (ms).
    public var durationTicks: Double { index.durationTicks }

    /// A file name for it: the topic and when the session started, `cam-2026-12-06T02-30-05Z.webm`.
    public var fileName: String {
        let started = Date(timeIntervalSince1970: Double(session.startedAtMilliseconds) / 1000)
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "-")
        return "\(topic)-\(stamp).webm"
    }

    /// The bytes of the file to send: all of it unless ``limit(to:)`` says otherwise.
    public var range: ClosedRange<Int64> { wanted.withLock { $0 } }

    /// Sends only `range` of the file (an HTTP range request), clamped to the file.
    public func limit(to range: ClosedRange<Int64>) {
        let last = max(0, contentLength - 1)
        wanted.withLock { $0 = min(range.lowerBound, last)...min(range.upperBound, last) }
    }

    /// Writes ``range`` of the file. Frees its reader slot when done, however it ends.
    public func stream(_ write: (ByteBuffer) async throws -> Void) async throws {
        defer { slot.release() }
        let range = range
        let headerLength = Int64(index.header.count)
        if range.lowerBound < headerLength {
            let upper = min(range.upperBound, headerLength - 1)
            try await write(ByteBuffer(bytes: index.header[Int(range.lowerBound)...Int(upper)]))
        }
        guard range.upperBound >= headerLength else { return }
        // The body's bytes wanted, and the latest place at or before them to start reading.
        let from = max(0, range.lowerBound - headerLength)
        let through = range.upperBound - headerLength
        let checkpoint = index.checkpoints.last { $0.position <= from }
        var cut = RecordingCut(session: session.id, endOffset: index.endOffset, startedAt: checkpoint?.offset)
        var position = checkpoint?.position ?? 0
        let reader = try await slot.reader(for: topic)
        let patches = index.patches
        try await reader.read(from: checkpoint?.offset ?? index.startOffset, until: index.endOffset) { message in
            for piece in cut.take(StreamFragment(message), offset: message.offset) {
                let length = Int64(piece.readableBytes)
                defer { position += length }
                guard position + length > from else { continue }
                guard position <= through else { return false }
                let skip = Int(max(0, from - position))
                let keep = Int(min(length, through - position + 1)) - skip
                guard var wanted = piece.getSlice(at: piece.readerIndex + skip, length: keep) else { continue }
                if patches.contains(where: { $0.position < position + length && $0.position + Int64($0.bytes.count) > position }) {
                    var bytes = Array(piece.readableBytesView)
                    WebMRecording.apply(patches, to: &bytes, at: position)
                    wanted = ByteBuffer(bytes: bytes[skip..<(skip + keep)])
                }
                try await write(wanted)
            }
            return !cut.finished && position <= through
        }
        guard position > through else {
            throw RecordingError.unreadable("Kafka gave back \(position) of the \(index.bodyLength) bytes indexed (retention may have removed them)")
        }
    }

    /// Frees the reader slot without streaming (a request that went away first).
    public func cancel() { slot.release() }

    deinit { slot.release() }
}
