import ArgumentParser
import Foundation
import Kafka
import ServiceLifecycle
import UnixSignals

/// Runs the embedded Kafka cluster alone, so several relays (and consoles) can share it.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run an embedded Kafka cluster (librdkafka's mock cluster) for several relays to share.",
        discussion: "Prints bootstrap=HOST:PORT; point relays at it with BOOTSTRAP_SERVERS=HOST:PORT."
    )

    @Option(help: "Also write HOST:PORT to this file.")
    var bootstrapFile: String?

    @Option(help: "Number of brokers in the cluster.")
    var brokers: Int32 = 1

    @Option(help: "Log level (env LOG_LEVEL).")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func run() async throws {
        let logger = bootstrapLogging(level: logLevel, label: "kvb.broker")
        let cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        if let bootstrapFile { writeBootstrapFile(cluster.bootstrapServers, to: bootstrapFile, logger: logger) }
        print("bootstrap=\(cluster.bootstrapServers)")
        fflush(nil)
        let service = WaitForShutdownService()
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        cluster.close()
    }
}

/// A service that does nothing until it is asked to shut down.
struct WaitForShutdownService: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
