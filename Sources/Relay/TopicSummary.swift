/// What the relay knows about a topic, for `GET /api/topics` and the index page.
public struct TopicSummary: Sendable, Equatable, Codable {
    public var name: String
    /// A publisher has sent to it within the last few seconds (on any relay).
    public var live: Bool
    /// The relay the newest fragment came through.
    public var publisherRelay: String?
    public var highWatermark: Int64
    /// Viewers of this topic on this relay.
    public var viewers: Int
    /// Viewers of this topic on every relay: this one's, plus what the others reported in their
    /// latest status documents (a few seconds old at most).
    public var viewersInFleet: Int
}
