import ArgumentParser
import Foundation
import Relay
import Trust

/// Who may publish, watch and command: publish keys, watch tokens, the operator key, origins and
/// topic patterns. Secrets come from the environment or files rather than the command line where
/// possible (other users can read a process's arguments).
struct SecurityOptions: ParsableArguments {
    @Option(name: .customLong("publish-key"), help: ArgumentHelp(
        "Publish key PATTERN=SECRET (repeatable); publishers of topics matching the glob PATTERN must present SECRET. Also KVB_PUBLISH_KEYS (comma-separated).",
        valueName: "pattern=secret"))
    var publishKeys: [String] = []

    @Option(help: "File of PATTERN=SECRET lines (# comments) (env KVB_PUBLISH_KEY_FILE).")
    var publishKeyFile: String?

    @Option(help: "File holding the key that signs watch tokens; when set, viewers need a token (env KVB_WATCH_TOKEN_KEY_FILE, or the key itself in KVB_WATCH_TOKEN_KEY).")
    var watchTokenKeyFile: String?

    @Option(help: "File holding the operator key shared with consoles (env KVB_OPERATOR_KEY_FILE, or the key itself in KVB_OPERATOR_KEY; default .kvb/operator.key when it exists).")
    var operatorKeyFile: String?

    @Option(name: .customLong("allowed-origin"), help: "A web origin whose pages may use the relay's WebSockets besides its own and loopback, e.g. https://studio.example.com, or * (repeatable; env KVB_ALLOWED_ORIGINS).")
    var allowedOrigins: [String] = []

    @Option(name: .customLong("topic-pattern"), help: "Only topics matching this glob may be published or watched here (repeatable; env KVB_TOPIC_PATTERNS; default every topic).")
    var topicPatterns: [String] = []

    @Flag(help: "Listen beyond loopback with no publish key: anyone who reaches the relay may publish.")
    var open = false

    /// The access policy from the options and `environment`.
    func accessPolicy(environment: [String: String]) throws -> AccessPolicy {
        var policy = AccessPolicy()
        var keys = PublishKeys()
        for spec in publishKeys { try keys.add(spec, source: "--publish-key") }
        if let list = environment["KVB_PUBLISH_KEYS"] { try keys.add(list: list, source: "KVB_PUBLISH_KEYS") }
        if let path = publishKeyFile ?? environment["KVB_PUBLISH_KEY_FILE"] {
            try keys.add(list: try KeyFile.read(path, what: "publish key file"), source: path)
        }
        policy.publishKeys = keys
        if let key = try Self.secret(environmentValue: environment["KVB_WATCH_TOKEN_KEY"], file: watchTokenKeyFile ?? environment["KVB_WATCH_TOKEN_KEY_FILE"],
                                     what: "watch-token key") {
            policy.watchTokens = WatchTokens(key: key)
        }
        var patterns = topicPatterns
        if let list = environment["KVB_TOPIC_PATTERNS"] { patterns += list.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        if !patterns.isEmpty { policy.topicPatterns = try patterns.filter { !$0.isEmpty }.map { try TopicPattern($0) } }
        return policy
    }

    /// The operator key: KVB_OPERATOR_KEY, else a key file (given, or the default one if present).
    /// nil when none is configured.
    func operatorKey(environment: [String: String]) throws -> (key: Secret, source: String)? {
        try OperatorKey.load(environment: environment, file: operatorKeyFile)
    }

    func originPolicy(environment: [String: String]) -> OriginPolicy {
        var origins = allowedOrigins
        if let list = environment["KVB_ALLOWED_ORIGINS"] { origins += list.split(separator: ",").map(String.init) }
        return OriginPolicy(allowed: origins)
    }

    static func secret(environmentValue: String?, file: String?, what: String) throws -> Secret? {
        if let value = environmentValue, !value.isEmpty { return try Secret(strong: value, what: what) }
        if let file { return try Secret(strong: KeyFile.read(file, what: "\(what) file"), what: file) }
        return nil
    }
}

