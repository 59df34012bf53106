import Foundation
import Kafka
import Logging
import NIOCore
import WebM

/// One session of a topic as a WebM file, streamed from Kafka: ``index(_:topic:kafka:logger:slot:)``
/// reads the session once to find its Clusters (so the file's header can carry its Duration and
/// Cues, and its length is known), then ``stream(_:)`` reads it again and sends the header and the
/// Clusters as they come. Nothing but the Cluster index is held in memory.
public final class RecordingDownload: Sendable {
    public let topic: String
    public let session: RecordedSession
    /// The file's header (EBML header, Segment, SeekHead, Info with Duration, Tracks, Cues).
    public let header: [UInt8]
    /// The file's length: header and Clusters.
    public var contentLength: Int64 { Int64(header.count) + bodyLength }
    /// The recording's length in TimecodeScale units (ms).
    public let durationTicks: Double
    private let bodyLength: Int64
    private let start: Int64
    private let endOffset: Int64
    private let patches: [WebMRecording.Patch]
    private let kafka: KafkaConfiguration
    private let logger: Logger
    private let slot: TopicArchive.ReaderSlot

    private init(topic: String, session: RecordedSession, recording: WebMRecording, durationTicks: Double, start: Int64,
                 endOffset: Int64, patches: [WebMRecording.Patch], kafka: KafkaConfiguration, logger: Logger,
                 slot: TopicArchive.ReaderSlot) {
        self.topic = topic
        self.session = session
        header = recording.header
        bodyLength = recording.bodyLength
        self.durationTicks = durationTicks
        self.start = start
        self.endOffset = endOffset
        self.patches = patches
        self.kafka = kafka
        self.logger = logger
        self.slot = slot
    }

    /// A file name for it: the topic and when the session started, `cam-2026-12-06T02-30-05Z.webm`.
    public var fileName: String {
        let started = Date(timeIntervalSince1970: Double(session.startedAtMilliseconds) / 1000)
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "-")
        return "\(topic)-\(stamp).webm"
    }

    /// First pass: the session's Clusters from its first keyframe retained to its end (or to what
    /// Kafka held when the listing was made, for a session still streaming).
    static func index(_ session: RecordedSession, topic: String, kafka: KafkaConfiguration, logger: Logger,
                      slot: TopicArchive.ReaderSlot) async throws -> RecordingDownload {
        let reader = try await ArchiveReader.open(kafka: kafka, topic: topic, logger: logger)
        defer { reader.close() }
        let endOffset = session.lastOffset + 1
        var cut = RecordingCut(session: session.id, endOffset: endOffset)
        var scanner: WebMClusterScanner?
        var bodyLength: Int64 = 0
        var problem: WebMError?
        try await reader.read(from: session.firstOffset, until: endOffset) { message in
            for piece in cut.take(StreamFragment(message), offset: message.offset) {
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
            recording = try WebMRecording(initSegment: initSegment, videoTrack: WebMInitSegment.parseTracks(in: initSegment)
                .first { $0.kind == .video }?.number, clusters: scanner.clusters, bodyLength: bodyLength, durationTicks: duration)
        } catch {
            throw RecordingError.unreadable(error.description)
        }
        return RecordingDownload(topic: topic, session: session, recording: recording, durationTicks: duration, start: start.offset,
                                 endOffset: endOffset, patches: recording.patches(for: scanner.clusters), kafka: kafka,
                                 logger: logger, slot: slot)
    }

    /// Second pass: writes the file (header, then the Clusters as Kafka gives them back). Frees
    /// its reader slot when done, however it ends.
    public func stream(_ write: (ByteBuffer) async throws -> Void) async throws {
        defer { slot.release() }
        try await write(ByteBuffer(bytes: header))
        let reader = try await ArchiveReader.open(kafka: kafka, topic: topic, logger: logger)
        defer { reader.close() }
        var cut = RecordingCut(session: session.id, endOffset: endOffset)
        var position: Int64 = 0
        let bodyLength = bodyLength
        let patches = patches
        try await reader.read(from: start, until: endOffset) { message in
            for piece in cut.take(StreamFragment(message), offset: message.offset) {
                let length = Int64(piece.readableBytes)
                guard position + length <= bodyLength else { throw RecordingError.unreadable("the session changed while it was sent") }
                if patches.contains(where: { $0.position < position + length && $0.position + Int64($0.bytes.count) > position }) {
                    var bytes = Array(piece.readableBytesView)
                    WebMRecording.apply(patches, to: &bytes, at: position)
                    try await write(ByteBuffer(bytes: bytes))
                } else {
                    try await write(piece)
                }
                position += length
            }
            return !cut.finished && position < bodyLength
        }
        guard position == bodyLength else {
            throw RecordingError.unreadable("Kafka gave back \(position) of the \(bodyLength) bytes indexed (retention may have removed them)")
        }
    }

    /// Frees the reader slot without streaming (a request that went away first).
    public func cancel() { slot.release() }

    deinit { slot.release() }
}
