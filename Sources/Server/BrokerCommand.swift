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
        discussion: """
            Prints bootstrap=HOST:PORT; point relays at it with BOOTSTRAP_SERVERS=HOST:PORT.
            Fault injection, one command per line on standard input (for tests and drills):
              down N      take broker N (1-based) down: its connections close, new ones are refused
              up N        bring it back
              rtt N MS    add MS milliseconds to broker N's responses (0 removes it)
              leader TOPIC N
                          make broker N the leader of TOPIC's partition 0 (a leader election)
            Each command is answered with a line "ok: ..." or "error: ...".
            """
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
        let brokers = self.brokers
        let reader = Thread {
            while let line = readLine() {
                print(FaultCommand.apply(line, to: cluster, brokers: brokers))
                fflush(nil)
            }
        }
        reader.name = "kvb-broker-stdin"
        reader.start()
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

/// The broker's fault-injection commands, read from its standard input.
enum FaultCommand {
    /// Applies one command line; returns the answer line.
    static func apply(_ line: String, to cluster: EmbeddedKafkaCluster, brokers: Int32) -> String {
        let usage = "down N, up N, rtt N MS, leader TOPIC N"
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let verb = words.first else { return "error: empty command (\(usage))" }
        if verb == "leader" {
            guard words.count == 3, let broker = Int32(words[2]), broker >= 1, broker <= brokers else {
                return "error: \(line): leader TOPIC N, with N a broker from 1 to \(brokers)"
            }
            do {
                try cluster.setLeader(topic: String(words[1]), broker: broker)
                return "ok: broker \(broker) leads \(words[1])"
            } catch {
                return "error: \(error)"
            }
        }
        guard words.count >= 2, let broker = Int32(words[1]), broker >= 1, broker <= brokers else {
            return "error: \(line): name a broker from 1 to \(brokers)"
        }
        switch verb {
        case "down":
            cluster.setBroker(broker, up: false)
            return "ok: broker \(broker) down"
        case "up":
            cluster.setBroker(broker, up: true)
            return "ok: broker \(broker) up"
        case "rtt":
            guard words.count == 3, let milliseconds = Int32(words[2]), milliseconds >= 0 else { return "error: rtt N MS" }
            cluster.setBroker(broker, roundTripMilliseconds: milliseconds)
            return "ok: broker \(broker) rtt \(milliseconds) ms"
        default:
            return "error: unknown command \(verb) (\(usage))"
        }
    }
}
