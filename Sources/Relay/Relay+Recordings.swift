import Foundation

extension Relay {
    /// The publisher sessions `topic` still holds, oldest first, for whoever may watch it
    /// (`token`: a watch token, where the relay needs them).
    public func recordedSessions(topic: TopicName, token: String?) async throws -> [RecordedSession] {
        _ = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: Int64(Date().timeIntervalSince1970))
        return try await archive.sessions(of: topic)
    }

    /// `session` of `topic` (its latest when nil) as a WebM file ready to stream. The caller must
    /// ``RecordingDownload/stream(_:)`` or ``RecordingDownload/cancel()`` it: it holds one of
    /// the relay's ``RelayLimits/recordingReaders`` until then.
    public func recording(topic: TopicName, session: String?, token: String?) async throws -> RecordingDownload {
        _ = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: Int64(Date().timeIntervalSince1970))
        return try await archive.recording(of: topic, session: session)
    }
}
