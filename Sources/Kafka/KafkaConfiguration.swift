/// How to reach a Kafka cluster, as typed settings plus any other librdkafka property.
///
/// Read from the environment the way the original project did (`BOOTSTRAP_SERVERS`,
/// `SECURITY_PROTOCOL`, `SASL_MECHANISMS`, `SASL_USERNAME`, `SASL_PASSWORD`); any other librdkafka
/// property can be given as `KAFKA_<NAME>` (dots written as underscores, e.g.
/// `KAFKA_SSL_CA_LOCATION=/etc/ca.pem` sets `ssl.ca.location`) or through ``properties``.
public struct KafkaConfiguration: Sendable, Equatable {
    /// `bootstrap.servers`: comma-separated HOST:PORT list.
    public var bootstrapServers: String
    /// `security.protocol`: `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    public var securityProtocol: String?
    /// `sasl.mechanisms`, e.g. `PLAIN` for Confluent Cloud.
    public var saslMechanisms: String?
    public var saslUsername: String?
    public var saslPassword: String?
    /// Any other librdkafka property. Applied last, so it overrides kvb's tuned defaults.
    public var properties: [String: String]

    public init(
        bootstrapServers: String,
        securityProtocol: String? = nil,
        saslMechanisms: String? = nil,
        saslUsername: String? = nil,
        saslPassword: String? = nil,
        properties: [String: String] = [:]
    ) {
        self.bootstrapServers = bootstrapServers
        self.securityProtocol = securityProtocol
        self.saslMechanisms = saslMechanisms
        self.saslUsername = saslUsername
        self.saslPassword = saslPassword
        self.properties = properties
    }

    /// The configuration the environment describes, or nil when `BOOTSTRAP_SERVERS` is unset or
    /// empty (the relay then starts its embedded cluster).
    public static func fromEnvironment(_ environment: [String: String]) -> KafkaConfiguration? {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingWhitespace(), !v.isEmpty else { return nil }
            return v
        }
        guard let bootstrap = value("BOOTSTRAP_SERVERS") else { return nil }
        var configuration = KafkaConfiguration(
            bootstrapServers: bootstrap,
            securityProtocol: value("SECURITY_PROTOCOL"),
            saslMechanisms: value("SASL_MECHANISMS"),
            saslUsername: value("SASL_USERNAME"),
            saslPassword: value("SASL_PASSWORD")
        )
        configuration.properties = Self.properties(fromEnvironment: environment)
        return configuration
    }

    /// librdkafka properties given as `KAFKA_<NAME>=value` environment variables.
    public static func properties(fromEnvironment environment: [String: String]) -> [String: String] {
        var properties: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("KAFKA_") && name.count > 6 {
            let key = name.dropFirst(6).lowercased().replacingAll("_", with: ".")
            properties[key] = value
        }
        return properties
    }

    /// The connection properties (bootstrap, security, SASL, extra properties) as librdkafka keys.
    public var connectionProperties: [String: String] {
        var result = ["bootstrap.servers": bootstrapServers]
        if let securityProtocol { result["security.protocol"] = securityProtocol }
        if let saslMechanisms { result["sasl.mechanisms"] = saslMechanisms }
        if let saslUsername { result["sasl.username"] = saslUsername }
        if let saslPassword { result["sasl.password"] = saslPassword }
        return result
    }

    /// Every property a handle of `role` gets: kvb's tuned defaults for live video, then the
    /// connection settings, then ``properties``.
    public func librdkafkaProperties(for role: KafkaRole) -> [String: String] {
        var result = role.liveVideoDefaults
        result.merge(connectionProperties) { _, new in new }
        result.merge(properties) { _, new in new }
        return result
    }
}

/// Which kind of librdkafka handle a set of properties is for.
public enum KafkaRole: Sendable {
    case producer, consumer, admin

    /// Defaults tuned for live video: no batching delay, no 500 ms fetch waits.
    public var liveVideoDefaults: [String: String] {
        var common = [
            "socket.nagle.disable": "true",
            "client.id": "kvb",
            "log.connection.close": "false",
        ]
        switch self {
        case .producer:
            common.merge([
                "acks": "all",
                "enable.idempotence": "true",
                // librdkafka 2.0.2 defaults to 5 ms; a live fragment should leave at once.
                "linger.ms": "0",
                "message.max.bytes": "8388608",
                "message.timeout.ms": "30000",
            ]) { _, new in new }
        case .consumer:
            common.merge([
                // librdkafka defaults to 500 ms; brokers hold an empty fetch for this long.
                "fetch.wait.max.ms": "5",
                "fetch.error.backoff.ms": "50",
                "enable.partition.eof": "true",
                "enable.auto.commit": "false",
                "auto.offset.reset": "latest",
                // Reading a topic that does not exist yet must not create it.
                "allow.auto.create.topics": "false",
                "fetch.message.max.bytes": "8388608",
                // Bound what librdkafka prefetches per consumer (its default is 64 MiB).
                "queued.max.messages.kbytes": "16384",
            ]) { _, new in new }
        case .admin:
            // Metadata lookups must never create the topics they look at.
            common["allow.auto.create.topics"] = "false"
        }
        return common
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }

    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
