import Kafka

/// Which topics exist in the cluster, from a full metadata listing cached for a moment.
///
/// A lookup that names a topic can create it (brokers with auto-creation, the embedded cluster
/// always), so kvb never names a topic to Kafka before it exists or before a publisher's valid
/// WebM: it asks this instead. One listing serves every caller for ``maxAgeMilliseconds``.
final class ClusterTopics: Sendable {
    private let admin: KafkaAdmin
    private let maxAgeMilliseconds: Int64
    private let cache = Locked<(names: Set<String>, at: Int64)?>(nil)

    init(admin: KafkaAdmin, maxAgeMilliseconds: Int64 = 1000) {
        self.admin = admin
        self.maxAgeMilliseconds = maxAgeMilliseconds
    }

    /// Whether `topic` exists; nil when Kafka did not answer. Blocking (a metadata request at most
    /// once per ``maxAgeMilliseconds``).
    func exists(_ topic: String) -> Bool? {
        names()?.contains(topic)
    }

    /// Every topic name; nil when Kafka did not answer. Blocking.
    func names() -> Set<String>? {
        let now = currentMilliseconds()
        if let cached = cache.withLock({ $0 }), now - cached.at < maxAgeMilliseconds { return cached.names }
        guard let listed = try? admin.listTopics(timeoutMilliseconds: 2000) else { return nil }
        let names = Set(listed.map(\.name))
        cache.withLock { $0 = (names, currentMilliseconds()) }
        return names
    }

    /// Forget the listing (a topic was just created).
    func invalidate() {
        cache.withLock { $0 = nil }
    }
}
