/// Why the relay refused or ended a connection. Each case maps to a WebSocket close code and a
/// reason the sender can act on (see docs/PROTOCOL.md).
public enum RelayError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidTopic(String, String)
    case topicBusy(String)
    case unsupportedMedia(String)
    case brokenStream(String)
    case kafkaUnavailable(String)
    case shuttingDown
    /// Kicked by the operator, and the ban has `secondsLeft` to run.
    case banned(secondsLeft: Int)

    /// The WebSocket close code this error is reported with.
    public var closeCode: UInt16 {
        switch self {
        case .invalidTopic: 4400
        case .topicBusy: 4409
        case .unsupportedMedia: 4415
        case .brokenStream: 4422
        case .kafkaUnavailable: 4503
        case .shuttingDown: 1001
        case .banned: 4001
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
        case .shuttingDown: "shutting_down"
        case .banned: "banned"
        }
    }

    public var description: String {
        switch self {
        case .invalidTopic(let name, let why): "invalid topic name: \(why) (\"\(name.count > 40 ? name.prefix(40) + "…" : name)\")"
        case .topicBusy(let topic): "topic \(topic) already has a publisher; stop it first or pick another topic"
        case .unsupportedMedia(let why): why
        case .brokenStream(let why): "broken WebM stream: \(why)"
        case .kafkaUnavailable(let why): "Kafka is unavailable: \(why)"
        case .shuttingDown: "relay shutting down"
        case .banned(let seconds): "removed by the operator; try again in \(seconds) s"
        }
    }
}
