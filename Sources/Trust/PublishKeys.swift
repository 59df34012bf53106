import Foundation

/// Who may publish to which topics: pairs of a topic glob and a secret, from
/// `--publish-key PATTERN=SECRET`, `KVB_PUBLISH_KEYS` or a key file. With no key configured,
/// publishing is open (the loopback default).
public struct PublishKeys: Sendable {
    public struct Entry: Sendable {
        public var pattern: TopicPattern
        public var secret: Secret
    }

    public private(set) var entries: [Entry] = []

    /// Shortest publish key accepted.
    public static let minimumLength = 8

    public init() {}

    /// Parses `PATTERN=SECRET` specifications (the secret may contain `=`).
    public init(specifications: [String], source: String = "--publish-key") throws(TrustError) {
        for spec in specifications {
            try add(spec, source: source)
        }
    }

    /// Adds one `PATTERN=SECRET`.
    public mutating func add(_ specification: String, source: String) throws(TrustError) {
        let trimmed = specification.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let equals = trimmed.firstIndex(of: "="), equals != trimmed.startIndex else {
            throw TrustError("\(source): expected PATTERN=SECRET (e.g. 'cam-*=s3cret-key'), got something without a pattern")
        }
        let pattern = try TopicPattern(String(trimmed[..<equals]))
        let secret = String(trimmed[trimmed.index(after: equals)...])
        guard secret.count >= Self.minimumLength else {
            throw TrustError("\(source): the key for \(pattern) is shorter than \(Self.minimumLength) characters")
        }
        entries.append(Entry(pattern: pattern, secret: Secret(secret)))
    }

    /// Parses a list separated by commas or newlines (`KVB_PUBLISH_KEYS`), or the lines of a key
    /// file; blank lines and lines starting with `#` are skipped.
    public mutating func add(list: String, source: String) throws(TrustError) {
        for line in list.split(whereSeparator: { $0.isNewline || $0 == "," }) {
            let entry = String(line).trimmingCharacters(in: .whitespacesAndNewlines)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            try add(entry, source: source)
        }
    }

    /// No key configured: anyone may publish.
    public var isOpen: Bool { entries.isEmpty }

    /// Checks the key a publisher presented for `topic`. Every key whose pattern matches is tried
    /// (in constant time each); the answer does not say which part was wrong beyond what the
    /// publisher needs to fix it.
    public func check(topic: String, presented: String?) -> PublishAccess {
        guard !isOpen else { return .open }
        let candidates = entries.filter { $0.pattern.matches(topic) }
        guard !candidates.isEmpty else { return .refused(.noKeyForTopic) }
        guard let presented, !presented.isEmpty else { return .refused(.missingKey) }
        var granted = false
        for entry in candidates where entry.secret.matches(presented) { granted = true }
        return granted ? .granted : .refused(.wrongKey)
    }
}

/// The outcome of a publish-key check.
public enum PublishAccess: Sendable, Equatable {
    /// No keys configured.
    case open
    case granted
    case refused(PublishRefusal)
}

public enum PublishRefusal: Sendable, Equatable {
    case missingKey
    case wrongKey
    case noKeyForTopic

    /// For the `reason` label of the rejection counter.
    public var label: String {
        switch self {
        case .missingKey: "publish_key_missing"
        case .wrongKey: "publish_key_wrong"
        case .noKeyForTopic: "publish_topic_not_keyed"
        }
    }

    /// What the publisher is told (never the key itself).
    public var message: String {
        switch self {
        case .missingKey: "this relay needs a publish key: add ?key=KEY to the publish URL or send it in the hello message"
        case .wrongKey: "wrong publish key for this topic"
        case .noKeyForTopic: "no publish key covers this topic on this relay"
        }
    }
}
