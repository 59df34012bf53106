import ArgumentParser
import Relay

/// Every limit as a command-line option; defaults come from ``RelayLimits`` (docs/SECURITY.md).
struct LimitOptions: ParsableArguments {
    private static let defaults = RelayLimits()

    @Option(help: "Largest WebSocket message a publisher may send, bytes (close 1009).")
    var maxPublishMessageBytes = defaults.publishMessageBytes

    @Option(help: "Largest WebSocket message a viewer may send, bytes (close 1009).")
    var maxWatchMessageBytes = defaults.watchMessageBytes

    @Option(help: "Highest publish rate, bits per second, averaged over --publish-burst-seconds (close 4429).")
    var maxPublishBitrate = defaults.publishBitsPerSecond

    @Option(help: "The window the publish rate is averaged over, seconds.")
    var publishBurstSeconds = defaults.publishBurstSeconds

    @Option(help: "Largest init segment (everything before the first Cluster), bytes (close 4413).")
    var maxInitSegmentBytes = defaults.initSegmentBytes

    @Option(help: "Largest single WebM element (one encoded frame), bytes (close 4413).")
    var maxElementBytes = defaults.elementBytes

    @Option(help: "Publishers on this relay at once (close 4503).")
    var maxPublishers = defaults.publishersPerRelay

    @Option(help: "Viewers on this relay at once (close 4503).")
    var maxViewers = defaults.viewersPerRelay

    @Option(help: "Viewers of one topic on this relay at once (close 4503).")
    var maxViewersPerTopic = defaults.viewersPerTopic

    @Option(help: "Topics this relay watches at once (all read through its one Kafka consumer) (close 4503).")
    var maxFeeds = defaults.feedsPerRelay

    @Option(help: "WebSockets open at once from one address (close 4429).")
    var maxConnectionsPerAddress = defaults.connectionsPerAddress

    @Option(help: "Messages a viewer may send per second (close 4429).")
    var maxViewerMessagesPerSecond = defaults.viewerMessagesPerSecond

    @Option(help: "Seconds a connection has to send its request, and a publisher its stream's start (close 4408).")
    var handshakeTimeout = defaults.handshakeSeconds

    @Option(help: "Seconds of silence after which a publisher is closed and its topic freed (close 4408).")
    var idlePublisherTimeout = defaults.idlePublisherSeconds

    @Option(help: "Seconds a viewer's socket may take nothing before it is cut off.")
    var stalledViewerTimeout = defaults.stalledViewerSeconds

    @Option(help: "Kernel send buffer of each connection, bytes.")
    var socketSendBufferBytes = defaults.socketSendBufferBytes

    @Option(help: "Topics paused at once by operators.")
    var maxPausedTopics = defaults.pausedTopics

    @Option(help: "Recording downloads and session listings reading Kafka at once, each with its own consumer (HTTP 503).")
    var maxRecordingReaders = defaults.recordingReaders

    @Option(help: "Viewers watching from an earlier time (?from=) at once, each with its own Kafka consumer (close 4503).")
    var maxReplayViewers = defaults.replayViewers

    func validate() throws {
        let positive: [(String, Int)] = [
            ("--max-publish-message-bytes", maxPublishMessageBytes), ("--max-watch-message-bytes", maxWatchMessageBytes),
            ("--publish-burst-seconds", publishBurstSeconds), ("--max-init-segment-bytes", maxInitSegmentBytes),
            ("--max-element-bytes", maxElementBytes), ("--max-publishers", maxPublishers), ("--max-viewers", maxViewers),
            ("--max-viewers-per-topic", maxViewersPerTopic), ("--max-feeds", maxFeeds),
            ("--max-connections-per-address", maxConnectionsPerAddress), ("--max-viewer-messages-per-second", maxViewerMessagesPerSecond),
            ("--handshake-timeout", handshakeTimeout), ("--idle-publisher-timeout", idlePublisherTimeout),
            ("--stalled-viewer-timeout", stalledViewerTimeout), ("--max-paused-topics", maxPausedTopics),
            ("--socket-send-buffer-bytes", socketSendBufferBytes), ("--max-recording-readers", maxRecordingReaders),
            ("--max-replay-viewers", maxReplayViewers),
        ]
        for (name, value) in positive where value <= 0 {
            throw ValidationError("\(name) must be at least 1 (got \(value))")
        }
        guard maxPublishBitrate > 0 else { throw ValidationError("--max-publish-bitrate must be at least 1 (got \(maxPublishBitrate))") }
    }

    var limits: RelayLimits {
        var limits = RelayLimits()
        limits.publishMessageBytes = maxPublishMessageBytes
        limits.watchMessageBytes = maxWatchMessageBytes
        limits.publishBitsPerSecond = maxPublishBitrate
        limits.publishBurstSeconds = publishBurstSeconds
        limits.initSegmentBytes = maxInitSegmentBytes
        limits.elementBytes = maxElementBytes
        limits.publishersPerRelay = maxPublishers
        limits.viewersPerRelay = maxViewers
        limits.viewersPerTopic = maxViewersPerTopic
        limits.feedsPerRelay = maxFeeds
        limits.connectionsPerAddress = maxConnectionsPerAddress
        limits.viewerMessagesPerSecond = maxViewerMessagesPerSecond
        limits.handshakeSeconds = handshakeTimeout
        limits.idlePublisherSeconds = idlePublisherTimeout
        limits.stalledViewerSeconds = stalledViewerTimeout
        limits.pausedTopics = maxPausedTopics
        limits.socketSendBufferBytes = socketSendBufferBytes
        limits.recordingReaders = maxRecordingReaders
        limits.replayViewers = maxReplayViewers
        return limits
    }
}
