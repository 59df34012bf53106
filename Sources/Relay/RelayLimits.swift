/// Every limit a relay enforces, with its default. Each one, when hit, closes the offending
/// connection with its own close code and reason and counts it in `kvb_rejected_total{reason}`
/// (docs/SECURITY.md lists them); nobody else is disturbed.
public struct RelayLimits: Sendable, Equatable {
    /// Largest WebSocket message a publisher may send (one MediaRecorder chunk). Close 1009.
    public var publishMessageBytes = 8 << 20
    /// Largest WebSocket message a viewer may send (its stats reports are ~100 bytes). Close 1009.
    public var watchMessageBytes = 16 << 10
    /// Highest publish rate, in bits per second, averaged over ``publishBurstSeconds``. Close 4429.
    /// MediaRecorder's default is about 2.5 Mbit/s.
    public var publishBitsPerSecond: Int64 = 25_000_000
    /// The window the publish rate is averaged over (a keyframe may briefly burst).
    public var publishBurstSeconds = 4
    /// Largest init segment, and so any one element before the first Cluster. Close 4413.
    /// MediaRecorder's init segment is about 200 bytes.
    public var initSegmentBytes = 256 << 10
    /// Largest single WebM element (a block: one encoded frame). Close 4413.
    public var elementBytes = 8 << 20
    /// Publishers streaming on one relay at once (one that has not sent a valid stream yet does
    /// not count; the handshake timeout bounds those). Close 4503.
    public var publishersPerRelay = 100
    /// Viewers on one relay at once. Close 4503.
    public var viewersPerRelay = 10_000
    /// Viewers of one topic on one relay at once. Close 4503.
    public var viewersPerTopic = 5_000
    /// Topics one relay watches at once (each costs a Kafka consumer). Close 4503.
    public var feedsPerRelay = 100
    /// WebSockets open at once from one remote address (behind a proxy: from the proxy). Close 4429.
    public var connectionsPerAddress = 128
    /// Text messages a viewer may send per second (it sends one a second), with a burst of twice that. Close 4429.
    public var viewerMessagesPerSecond = 20
    /// A publisher must send its EBML header (and key, if one is needed) within this. Close 4408.
    /// Also the time a plain HTTP request may take to arrive.
    public var handshakeSeconds = 10
    /// A publisher that sends nothing for this long is closed and its topic freed. Close 4408.
    public var idlePublisherSeconds = 15
    /// A viewer whose socket accepts nothing for this long is disconnected (it cannot be sent a
    /// close frame it would not read). Counted as `stalled_viewer`.
    public var stalledViewerSeconds = 15
    /// Kernel send buffer of each connection (fixed, instead of autotuning up to 4 MiB): bounds
    /// memory per viewer and still carries 5 MB/s at 100 ms round trip.
    public var socketSendBufferBytes = 512 << 10
    /// Topics paused at once by operators; further pauses are refused in the acknowledgement.
    public var pausedTopics = 1_000
    /// Kicked clients and addresses remembered for their ban period at once.
    public var bannedClients = 10_000
    /// Downloads and session listings reading Kafka at once on this relay; each holds a Kafka
    /// consumer of its own while it runs. HTTP 503.
    public var recordingReaders = 4
    /// Viewers watching from an earlier time (`?from=`) on this relay at once; each reads Kafka
    /// with a consumer of its own, so they are bounded apart from live viewers. Close 4503.
    public var replayViewers = 20

    public init() {}
}

/// A limit that was hit: the close code, the counter's `reason` label and the words for the sender.
public enum Limit: String, Sendable, CaseIterable {
    case publishMessageSize = "publish_message_too_large"
    case watchMessageSize = "watch_message_too_large"
    case publishBitrate = "publish_bitrate"
    case initSegmentSize = "init_segment_too_large"
    case elementSize = "element_too_large"
    case publishersPerRelay = "publishers_per_relay"
    case viewersPerRelay = "viewers_per_relay"
    case viewersPerTopic = "viewers_per_topic"
    case feedsPerRelay = "feeds_per_relay"
    case connectionsPerAddress = "connections_per_address"
    case viewerMessageRate = "viewer_message_rate"
    case handshakeTimeout = "handshake_timeout"
    case idlePublisher = "idle_publisher"
    case stalledViewer = "stalled_viewer"
    case recordingReaders = "recording_readers"
    case replayViewers = "replay_viewers"

    public var closeCode: UInt16 {
        switch self {
        case .publishMessageSize, .watchMessageSize: 1009
        case .initSegmentSize, .elementSize: 4413
        case .publishBitrate, .connectionsPerAddress, .viewerMessageRate: 4429
        case .publishersPerRelay, .viewersPerRelay, .viewersPerTopic, .feedsPerRelay, .recordingReaders, .replayViewers: 4503
        case .handshakeTimeout, .idlePublisher, .stalledViewer: 4408
        }
    }
}
