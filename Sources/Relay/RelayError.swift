/// Why the relay refused or ended a connection. Each case maps to a WebSocket close code and a
/// reason the sender can act on (see docs/PROTOCOL.md), and to the `reason` label the server
/// counts it under in `kvb_rejected_total` when it closes the socket with it.
public enum RelayError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidTopic(String, String)
    case topicBusy(String)
    case unsupportedMedia(String)
    case brokenStream(String)
    case kafkaUnavailable(String)
    /// A viewer asked to watch from a time the topic holds nothing of. Close 4404.
    case nothingToReplay(String)
    case shuttingDown
    /// Kicked by the operator, and the ban has `secondsLeft` to run.
    case banned(secondsLeft: Int)
    /// Not allowed: a missing or wrong key or token, a refused origin, a topic this relay does not
    /// serve. Close 4003.
    case forbidden(Forbidden, String)
    /// A limit was hit (the limit says its close code).
    case limit(Limit, String)

    /// The WebSocket close code this error is reported with.
    public var closeCode: UInt16 {
        switch self {
        case .invalidTopic: 4400
        case .topicBusy: 4409
        case .unsupportedMedia: 4415
        case .brokenStream: 4422
        case .kafkaUnavailable: 4503
        case .nothingToReplay: 4404
        case .shuttingDown: 1001
        case .banned: 4001
        case .forbidden: 4003
        case .limit(let limit, _): limit.closeCode
        }
    }

    /// A short label for metrics and logs.
    public var label: String {
        switch self {
        case .invalidTopic: "invalid_topic"
        case .topicBusy: "topic_busy"
        case .unsupportedMedia: "unsupported_media"
        case .brokenStream: "broken_stream"
        case .kafkaUnavailable: "kafka_unavailable"
        case .nothingToReplay: "nothing_to_replay"
        case .shuttingDown: "shutting_down"
        case .banned: "banned"
        case .forbidden(let why, _): why.rawValue
        case .limit(let limit, _): limit.rawValue
        }
    }

    public var description: String {
        switch self {
        case .invalidTopic(let name, let why): "invalid topic name: \(why) (\"\(name.count > 40 ? name.prefix(40) + "…" : name)\")"
        case .topicBusy(let topic): "topic \(topic) already has a publisher; stop it first or pick another topic"
        case .unsupportedMedia(let why): why
        case .brokenStream(let why): "broken WebM stream: \(why)"
        case .kafkaUnavailable(let why): "Kafka is unavailable: \(why)"
        case .nothingToReplay(let why): why
        case .shuttingDown: "relay shutting down"
        case .banned(let seconds): "removed by the operator; try again in \(seconds) s"
        case .forbidden(_, let message): message
        case .limit(_, let message): message
        }
    }
}

/// Why a connection is not allowed (close 4003); the raw value is the counter's `reason` label.
public enum Forbidden: String, Sendable, CaseIterable {
    case publishKeyMissing = "publish_key_missing"
    case publishKeyWrong = "publish_key_wrong"
    case publishTopicNotKeyed = "publish_topic_not_keyed"
    case watchTokenMissing = "watch_token_missing"
    case watchTokenInvalid = "watch_token_invalid"
    case watchTokenExpired = "watch_token_expired"
    case originRefused = "origin_refused"
    case topicNotAllowed = "topic_not_allowed"
    case foreignTopic = "foreign_topic"
}
