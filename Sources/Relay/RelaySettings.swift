import Kafka
import Trust

/// Tunables of the relay core, with the defaults `kvb-server` uses.
public struct RelaySettings: Sendable {
    /// This relay's id in headers, status and logs.
    public var relayID: String
    /// Bytes queued per viewer before it is skipped forward to the next keyframe.
    public var viewerQueueBytes = 4 << 20
    /// Bytes of the latest keyframe group kept per topic for viewers who join.
    public var keyframeCacheBytes = 16 << 20
    /// Records read back from the high watermark to find the latest keyframe (first try).
    public var catchUpWindow: Int64 = 400
    /// The widest read-back before giving up and waiting for the next keyframe.
    public var maxCatchUpWindow: Int64 = 25_600
    /// A stream whose newest fragment is older than this is not offered to new viewers.
    public var staleStreamMilliseconds: Int64 = 10_000
    /// How long a topic's consumer stays open after its last viewer leaves.
    public var feedLingerMilliseconds: Int64 = 5_000
    /// How long a kicked viewer's client id and address are refused.
    public var kickBanMilliseconds: Int64 = 60_000
    /// Viewers listed per status document; past this they are listed a page per document, in
    /// turn (publishers are always listed). Keeps the document far below a broker's 1 MB limit.
    public var statusViewersPerPage = 250
    /// Every limit, with its default.
    public var limits = RelayLimits()
    /// What the relay asks of the topics it creates: replication, retention, record size.
    public var topics = KafkaTopicSettings()
    /// Who may publish and watch what.
    public var access = AccessPolicy()
    /// The key operator commands, acknowledgements and status documents are signed with. Without
    /// it the relay applies no command at all.
    public var operatorKey: Secret?
    /// Testing aid: each topic consumer pauses this long after every record, so it falls behind
    /// on purpose and the reported lag can be checked. 0 (the default) in production.
    public var consumerThrottleMilliseconds = 0

    public init(relayID: String) {
        self.relayID = relayID
    }
}
