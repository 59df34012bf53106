import ControlPlane
import Foundation

extension Relay {
    /// The publisher sessions `topic` still holds, oldest first, for whoever may watch it
    /// (`token`: a watch token, where the relay needs them).
    public func recordedSessions(topic: TopicName, token: String?) async throws -> [RecordedSession] {
        _ = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: Int64(Date().timeIntervalSince1970))
        return try await archive.sessions(of: topic)
    }

    /// The newest `limit` sessions of every stream topic this relay serves (`GET /api/recordings`;
    /// the catalog reads only topics `--topic-pattern` allows).
    /// Refused while watch tokens are on: each topic needs its own token, so list one topic's
    /// sessions at a time with ``recordedSessions(topic:token:)``.
    public func recordingList(limit: Int) async throws -> RecordingList {
        if settings.access.watchTokens != nil {
            throw RelayError.forbidden(.watchTokenMissing, "this relay needs a watch token for each topic: list one topic's recordings at /api/topics/TOPIC/sessions?token=…")
        }
        return try await catalog.list(limit: limit)
    }

    /// `session` of `topic` (its latest when nil), or the time from `from` to `to` (ms since the
    /// Unix epoch), as a WebM file ready to stream. The caller must
    /// ``RecordingDownload/stream(_:)`` or ``RecordingDownload/cancel()`` it: it holds one of
    /// the relay's ``RelayLimits/recordingReaders`` until then.
    public func recording(topic: TopicName, session: String?, from: Int64? = nil, to: Int64? = nil,
                          token: String?) async throws -> RecordingDownload {
        _ = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: Int64(Date().timeIntervalSince1970))
        return try await archive.recording(of: topic, session: session, from: from, to: to)
    }
}
