import Trust

/// Who may publish and watch which topics on this relay: publish keys, optional signed watch
/// tokens, and the topic patterns the relay serves. Pure checks; the server counts refusals when it closes the socket.
public struct AccessPolicy: Sendable {
    /// Keys publishers must present; none configured means publishing is open.
    public var publishKeys = PublishKeys()
    /// When set, viewers need a valid token for their topic.
    public var watchTokens: WatchTokens?
    /// Topics that may be published or watched here (`--topic-pattern`); every topic by default.
    public var topicPatterns: [TopicPattern] = [.any]

    public init() {}

    /// Whether this relay serves `topic` at all.
    public func allows(topic: TopicName) throws(RelayError) {
        guard topicPatterns.contains(where: { $0.matches(topic.value) }) else {
            let allowed = topicPatterns.map(\.text).joined(separator: ", ")
            throw .forbidden(.topicNotAllowed, "topic \(topic) is not served by this relay (allowed: \(allowed))")
        }
    }

    /// Checks a publisher's key for `topic`.
    public func checkPublish(topic: TopicName, key: String?) throws(RelayError) {
        try allows(topic: topic)
        switch publishKeys.check(topic: topic.value, presented: key) {
        case .open, .granted: return
        case .refused(let why):
            let reason: Forbidden = switch why {
            case .missingKey: .publishKeyMissing
            case .wrongKey: .publishKeyWrong
            case .noKeyForTopic: .publishTopicNotKeyed
            }
            throw .forbidden(reason, why.message)
        }
    }

    /// Checks a viewer's token for `topic` (when tokens are on). Returns when the token expires.
    @discardableResult
    public func checkWatch(topic: TopicName, token: String?, nowSeconds: Int64) throws(RelayError) -> Int64? {
        try allows(topic: topic)
        guard let watchTokens else { return nil }
        let check = watchTokens.check(token, topic: topic.value, nowSeconds: nowSeconds)
        switch check {
        case .valid(let expires): return expires
        case .missing: throw .forbidden(.watchTokenMissing, check.message)
        case .malformed, .invalid: throw .forbidden(.watchTokenInvalid, check.message)
        case .expired: throw .forbidden(.watchTokenExpired, check.message)
        }
    }

    /// Whether publishing needs a key.
    public var publishNeedsKey: Bool { !publishKeys.isOpen }
}
