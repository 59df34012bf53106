import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Kafka
import Logging
import Metrics
import Prometheus
import Relay
import ServiceLifecycle
import Trust
import UnixSignals

/// Runs a relay: HTTP pages, the publish and watch WebSockets, and the Kafka plumbing.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run a relay (the default).")

    @Option(help: "Address to listen on (env KVB_HOST).")
    var host: String = ProcessInfo.processInfo.environment["KVB_HOST"] ?? "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one (env KVB_PORT).")
    var port: Int = ProcessInfo.processInfo.environment["KVB_PORT"].flatMap(Int.init) ?? 8080

    @Option(help: "Folder of the browser pages (env KVB_STATIC_DIR).")
    var staticDir: String = ProcessInfo.processInfo.environment["KVB_STATIC_DIR"] ?? "Static"

    @Option(help: "Where to write the embedded cluster's bootstrap address, for consoles and other relays.")
    var bootstrapFile: String = ProcessInfo.processInfo.environment["KVB_BOOTSTRAP_FILE"] ?? ".kvb/bootstrap"

    @Option(name: .customLong("kafka-property"), help: "Extra librdkafka property NAME=VALUE (repeatable).")
    var kafkaProperties: [String] = []

    @Option(help: "This relay's id (default: host:port).")
    var relayID: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (env LOG_LEVEL).")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    @Option(help: "Viewers listed per status document; past this each document lists the next page of them.")
    var statusViewersPerPage = RelaySettings(relayID: "").statusViewersPerPage

    @OptionGroup(title: "Security") var security: SecurityOptions

    @OptionGroup(title: "Limits") var limits: LimitOptions

    @OptionGroup(title: "Topics kvb creates") var topics: TopicOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let access = try security.accessPolicy(environment: environment)
        // Beyond loopback, open publishing lets anyone write into the Kafka cluster.
        if !Loopback.contains(host: host), access.publishKeys.isOpen, !security.open {
            throw ValidationError("""
                refusing to listen on \(host) with open publishing: anyone who can reach it could publish into your Kafka cluster. \
                Configure publish keys (--publish-key PATTERN=SECRET, KVB_PUBLISH_KEYS or --publish-key-file), \
                or pass --open if that is what you want.
                """)
        }
        var operatorKey = try security.operatorKey(environment: environment)
        let logger = bootstrapLogging(level: logLevel, label: "kvb.relay")
        let prometheus = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))
        let extra = try parseProperties(kafkaProperties)

        var embedded: EmbeddedKafkaCluster?
        var kafka: KafkaConfiguration
        if var configured = KafkaConfiguration.fromEnvironment(environment) {
            configured.properties.merge(extra) { _, new in new }
            kafka = configured
            logger.info("using Kafka at \(kafka.bootstrapServers) (librdkafka \(Librdkafka.version))")
        } else {
            let cluster = try EmbeddedKafkaCluster(logger: logger)
            embedded = cluster
            kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: KafkaConfiguration.properties(fromEnvironment: environment).merging(extra) { _, new in new })
            writeBootstrapFile(cluster.bootstrapServers, to: bootstrapFile, logger: logger)
            print("kvb: no BOOTSTRAP_SERVERS set: started an embedded Kafka cluster at \(cluster.bootstrapServers) (written to \(bootstrapFile))")
            // Zero setup: the console started here (`make console`) finds this key.
            if operatorKey == nil {
                let path = OperatorKey.defaultFile
                operatorKey = (Secret(try KeyFile.generate(at: path)), path)
                print("kvb: generated an operator key in \(path) for consoles in this folder")
            }
        }
        if let operatorKey {
            logger.info("operator commands: signed with the operator key from \(operatorKey.source)")
        }

        let id = relayID ?? "\(host):\(port)"
        var createTopic: (@Sendable (TopicName, Int) throws -> Void)?
        if let cluster = embedded {
            createTopic = { topic, replicas in try cluster.createTopic(topic.value, partitions: 1, replicationFactor: Int32(replicas)) }
        }
        var settings = RelaySettings(relayID: id)
        settings.limits = limits.limits
        settings.topics = topics.settings
        settings.access = access
        settings.operatorKey = operatorKey?.key
        settings.statusViewersPerPage = max(1, statusViewersPerPage)
        if !access.publishKeys.isOpen { logger.info("publishing needs a key: \(access.publishKeys.entries.count) key(s) for \(access.publishKeys.entries.map(\.pattern.text).joined(separator: ", "))") }
        if access.watchTokens != nil { logger.info("watching needs a signed token (kvb-server token --topic T)") }
        if let throttle = environment["KVB_CONSUMER_THROTTLE_MS"].flatMap(Int.init), throttle > 0 {
            settings.consumerThrottleMilliseconds = throttle
            logger.warning("KVB_CONSUMER_THROTTLE_MS=\(throttle): topic consumers are held back on purpose (testing aid)")
        }
        let relay = try Relay(settings: settings, kafka: kafka, logger: logger, createTopic: createTopic)
        let connections = ConnectionRegistry(maxPerAddress: settings.limits.connectionsPerAddress)
        let agent = Locked<ControlPlaneAgent?>(nil)
        let app = makeApplication(
            relay: relay, connections: connections, origins: security.originPolicy(environment: environment), kafka: kafka, embedded: embedded != nil,
            host: host, port: port, staticDir: staticDir, prometheus: prometheus, logger: logger
        ) { address in
            // The control plane starts once the relay's address is known.
            do {
                let started = try ControlPlaneAgent(relay: relay, address: address, logger: logger)
                agent.withLock { $0 = started }
                DispatchQueue.global().async { started.start() }
            } catch {
                logger.error("control plane unavailable: \(error)")
            }
        }
        let shutdown = RelayShutdownService(relay: relay, connections: connections, agent: agent, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: shutdown)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        embedded?.close()
        logger.info("relay stopped")
    }
}

/// Parses `NAME=VALUE` pairs.
func parseProperties(_ pairs: [String]) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationError("--kafka-property wants NAME=VALUE, got \"\(pair)\"")
        }
        result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    return result
}

func writeBootstrapFile(_ bootstrap: String, to path: String, logger: Logger) {
    let url = URL(fileURLWithPath: path)
    do {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (bootstrap + "\n").write(to: url, atomically: true, encoding: .utf8)
    } catch {
        logger.warning("could not write the bootstrap address to \(path): \(error)")
    }
}

/// Sets up swift-log once: stderr, at `level`.
func bootstrapLogging(level: String, label: String) -> Logger {
    let parsed = Logger.Level(rawValue: level.lowercased()) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = parsed
        return handler
    }
    return Logger(label: label)
}
