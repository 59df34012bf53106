import Foundation

extension Relay {
    /// The publisher sessions `topic` still holds, oldest first, for whoever may watch it
    /// (`token`: a watch token, where the relay needs them).
    public func recordedSessions(topic: TopicName, token: String?) async throws -> [RecordedSession] {
        _ = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: Int64(Date().timeIntervalSince1970))
        return try await archive.sessions(of: topic)
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
