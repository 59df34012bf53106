import ArgumentParser
import ConsoleUI
import ControlPlane
import Foundation
import Kafka
import Logging
import Synchronization
import Trust

/// Set by SIGINT/SIGTERM so the loop can restore the terminal before exiting.
let stopRequested = Atomic<Bool>(false)

/// `kvb-console`: the operator console. Sees every relay on the cluster; kicks, pauses, switches.
@main
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvb-console",
        abstract: "The kvb operator console: every relay, session, topic, lag and latency; kick, pause, switch.",
        discussion: """
            Kafka: --bootstrap, else BOOTSTRAP_SERVERS (with SECURITY_PROTOCOL, SASL_* as for the relay),
            else the embedded cluster of a relay started by `make run` here (read from .kvb/bootstrap).
            """,
        subcommands: [InteractiveCommand.self, StatusCommand.self, SendCommand.self, RecordingsCommand.self],
        defaultSubcommand: InteractiveCommand.self
    )
}

/// How the console reaches Kafka; shared by every subcommand.
struct KafkaOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers HOST:PORT.")
    var bootstrap: String?

    @Option(help: "File holding the embedded cluster's address, written by the relay.")
    var bootstrapFile: String = ProcessInfo.processInfo.environment["KVB_BOOTSTRAP_FILE"] ?? ".kvb/bootstrap"

    @Option(name: .customLong("kafka-property"), help: "Extra librdkafka property NAME=VALUE (repeatable).")
    var kafkaProperties: [String] = []

    @Option(help: "Where the console's own log goes (the screen belongs to the UI).")
    var logFile: String = ProcessInfo.processInfo.environment["KVB_CONSOLE_LOG"] ?? "/dev/null"

    @Option(help: "File holding the operator key shared with the relays (env KVB_OPERATOR_KEY_FILE, or the key itself in KVB_OPERATOR_KEY; default .kvb/operator.key).")
    var operatorKeyFile: String?
}

/// The interactive console (the default).
struct InteractiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ui", abstract: "The interactive console (the default).")

    @OptionGroup var kafka: KafkaOptions

    func run() throws {
        let configuration = try kafka.kafkaConfiguration()
        let logger = kafka.makeLogger()
        let link = try FleetLink(configuration: configuration, operatorKey: try kafka.operatorKey(), logger: logger)
        link.start()
        let recordings = try RecordingsLink(configuration: configuration, logger: logger)

        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGHUP) { _ in stopRequested.store(true, ordering: .relaxed) }

        let terminal = Terminal()
        defer {
            terminal.restore()
            recordings.stop()
            link.stop()
        }
        // Command ids must be unique across consoles (relays refuse a repeated id as a replay).
        var state = ConsoleState(consoleID: "console-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt32.random(in: .min ... .max), radix: 16))")
        var lastDraw: Int64 = 0
        var dirty = true
        while !stopRequested.load(ordering: .relaxed), !terminal.isGone {
            let now = FleetLink.now()
            var snapshot = link.take(nowMilliseconds: now)
            if state.view == .recordings || state.view == .topics && state.mode == .detail { recordings.want() }
            recordings.fill(&snapshot.fleet)
            for ack in snapshot.acks { state.receive(ack); dirty = true }
            state.tick(nowMilliseconds: now)
            if let key = terminal.readKey() {
                for action in state.handle(key, fleet: snapshot.fleet, nowMilliseconds: now) {
                    switch action {
                    case .quit: return
                    case .send(let command):
                        do { try link.send(command) } catch { state.setStatus("Could not send: \(error.message)", error: true) }
                    }
                }
                dirty = true
                snapshot = link.take(nowMilliseconds: now)
                recordings.fill(&snapshot.fleet)
            }
            if dirty || now - lastDraw >= 500 {
                let (width, height) = terminal.size
                terminal.draw(Screen.render(state: state, fleet: snapshot.fleet, connection: connectionLine(link, snapshot, now: now),
                                            nowMilliseconds: now, width: width, height: height))
                lastDraw = now
                dirty = false
            }
        }
    }

    private func connectionLine(_ link: FleetLink, _ snapshot: FleetLink.Snapshot, now: Int64) -> String {
        if let error = snapshot.lastError, now - snapshot.lastErrorAt < 10_000, now - snapshot.lastRecordAt > 3_000 {
            return "kafka \(link.bootstrap) unreachable, retrying: \(error)"
        }
        var notes: [String] = []
        if link.keySource == nil { notes.append("read-only, unverified: no operator key") }
        if snapshot.forgedRecords > 0 { notes.append("\(snapshot.forgedRecords) unsigned or forged records ignored") }
        if snapshot.ignoredRecords > 0 { notes.append("\(snapshot.ignoredRecords) unreadable records ignored") }
        return "kafka \(link.bootstrap)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
    }

}

extension KafkaOptions {
    func kafkaConfiguration() throws -> KafkaConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var extra: [String: String] = [:]
        for pair in kafkaProperties {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--kafka-property wants NAME=VALUE, got \"\(pair)\"")
            }
            extra[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        var configuration: KafkaConfiguration
        if let bootstrap {
            configuration = KafkaConfiguration.fromEnvironment(environment.merging(["BOOTSTRAP_SERVERS": bootstrap]) { _, new in new })
                ?? KafkaConfiguration(bootstrapServers: bootstrap)
        } else if let fromEnvironment = KafkaConfiguration.fromEnvironment(environment) {
            configuration = fromEnvironment
        } else if let contents = try? String(contentsOfFile: bootstrapFile, encoding: .utf8),
                  case let address = contents.trimmingCharacters(in: .whitespacesAndNewlines), !address.isEmpty
        {
            configuration = KafkaConfiguration(bootstrapServers: address, properties: KafkaConfiguration.properties(fromEnvironment: environment))
        } else {
            throw ValidationError("""
                No Kafka to watch: start a relay with `make run` in this folder (it writes \(bootstrapFile)), \
                or set BOOTSTRAP_SERVERS, or pass --bootstrap HOST:PORT.
                """)
        }
        configuration.properties.merge(extra) { _, new in new }
        // The console reads control topics only; it needs no prefetch beyond a few documents.
        configuration.properties["fetch.wait.max.ms"] = configuration.properties["fetch.wait.max.ms"] ?? "100"
        return configuration
    }

    /// The operator key, from the environment, a file, or `.kvb/operator.key`.
    func operatorKey() throws -> (key: Secret, source: String)? {
        do {
            return try OperatorKey.load(environment: ProcessInfo.processInfo.environment, file: operatorKeyFile)
        } catch {
            throw ValidationError(error.message)
        }
    }

    func makeLogger() -> Logger {
        let path = logFile
        LoggingSystem.bootstrap { label in
            var handler = FileLogHandler(label: label, path: path)
            handler.logLevel = .info
            return handler
        }
        return Logger(label: "kvb.console")
    }
}

/// Logs to a file: the terminal belongs to the UI.
struct FileLogHandler: LogHandler {
    let label: String
    let file: FileHandle?
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, path: String) {
        self.label = label
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        file = FileHandle(forWritingAtPath: path)
        _ = try? file?.seekToEnd()
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        file?.write(Data("\(Date()) \(event.level) \(label): \(event.message)\n".utf8))
    }
}
