/// A validated stream topic name: the Kafka topic that carries one live stream.
public struct TopicName: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let value: String

    /// Kafka's own rules (1–249 of `A-Za-z0-9._-`, not `.` or `..`), minus names kvb keeps for
    /// itself: Kafka's internal `__` topics and kvb's `kvb.` control topics.
    public init(_ value: String) throws(RelayError) {
        try self.init(value, allowingControlTopics: false)
    }

    /// kvb's own topics (`kvb.status`, `kvb.control`) pass only with `allowingControlTopics`.
    init(_ value: String, allowingControlTopics: Bool) throws(RelayError) {
        guard !value.isEmpty else { throw .invalidTopic(value, "the topic name is empty") }
        guard value.utf8.count <= 249 else { throw .invalidTopic(value, "the topic name is longer than 249 characters") }
        guard value != ".", value != ".." else { throw .invalidTopic(value, "\"\(value)\" is not a valid Kafka topic name") }
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        guard allowed else {
            throw .invalidTopic(value, "a topic name may only contain letters, digits, '.', '_' and '-'")
        }
        guard !value.hasPrefix("__") else { throw .invalidTopic(value, "topics starting with \"__\" are Kafka's internal topics") }
        guard allowingControlTopics || !value.hasPrefix("kvb.") else { throw .invalidTopic(value, "topics starting with \"kvb.\" are kvb's control topics") }
        self.value = value
    }

    public var description: String { value }
    public static func < (lhs: TopicName, rhs: TopicName) -> Bool { lhs.value < rhs.value }
}
