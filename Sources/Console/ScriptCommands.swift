import ArgumentParser
import ConsoleUI
import ControlPlane
import Foundation
import Kafka
import Relay
import Trust

/// `kvb-console status`: the fleet as JSON, once, for scripts and monitoring.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print every relay's latest status document as a JSON array, then exit."
    )

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "Seconds to listen for status documents.")
    var wait: Double = 2.5

    func run() throws {
        let link = try FleetLink(configuration: kafka.kafkaConfiguration(), operatorKey: try kafka.operatorKey(), logger: kafka.makeLogger())
        link.start()
        defer { link.stop() }
        Thread.sleep(forTimeInterval: wait)
        let now = FleetLink.now()
        let fleet = link.take(nowMilliseconds: now).fleet
        let statuses = fleet.sortedRelays.filter { !fleet.isStale($0.status.relay, nowMilliseconds: now) }.map(\.status)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(statuses), as: UTF8.self))
    }
}

/// `kvb-console send`: one operator command without the UI; waits for the acknowledgements.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one command (kick, pause, resume, switch) and print the relays' acknowledgements.",
        discussion: """
            kvb-console send kick --viewer v-3 --relay 127.0.0.1:8080
            kvb-console send pause --topic cam
            kvb-console send switch --topic cam --to lobby              (every viewer of cam)
            kvb-console send switch --viewer v-3 --relay R --to lobby   (one viewer)
            Exits 0 when a relay acknowledged it successfully, 1 otherwise.
            """
    )

    @OptionGroup var kafka: KafkaOptions

    @Argument(help: "kick, pause, resume or switch.")
    var action: String

    @Option(help: "Topic (pause, resume, switch all viewers of it).")
    var topic: String?

    @Option(help: "Viewer session id, e.g. v-3 (kick, switch one viewer).")
    var viewer: String?

    @Option(help: "The relay holding the viewer.")
    var relay: String?

    @Option(help: "Target topic of a switch.")
    var to: String?

    @Option(help: "Seconds to wait for acknowledgements.")
    var wait: Double = 3

    func run() throws {
        guard let parsed = ControlCommand.Action(rawValue: action) else {
            throw ValidationError("unknown action \(action): use kick, pause, resume or switch")
        }
        if parsed == .kick, relay == nil || viewer == nil {
            throw ValidationError("kick names one relay's one viewer: give --viewer and --relay")
        }
        guard let operatorKey = try kafka.operatorKey() else { throw ValidationError(FleetLink.readOnlyMessage) }
        let link = try FleetLink(configuration: kafka.kafkaConfiguration(), operatorKey: operatorKey, logger: kafka.makeLogger())
        link.start()
        defer { link.stop() }
        let command = ControlCommand(
            id: "cli-\(ProcessInfo.processInfo.processIdentifier)-\(FleetLink.now())-\(String(UInt32.random(in: .min ... .max), radix: 16))",
            action: parsed, topic: topic,
            viewer: viewer, relay: relay, to: to, issuedAtMilliseconds: FleetLink.now(), issuedBy: "kvb-console send"
        )
        // Let the control topic's assignment settle so the acknowledgement is not missed.
        Thread.sleep(forTimeInterval: 0.5)
        try link.send(command)
        // Done when the targeted relay, or every relay reporting now, has answered.
        let now = FleetLink.now()
        let fleet = link.take(nowMilliseconds: now).fleet
        let expected = relay.map { Set([$0]) }
            ?? Set(fleet.relays.keys.filter { !fleet.isStale($0, nowMilliseconds: now) })
        let deadline = Date().addingTimeInterval(wait)
        var succeeded = false
        var answered: Set<String> = []
        while Date() < deadline, expected.isEmpty || !answered.isSuperset(of: expected) {
            for ack in link.take(nowMilliseconds: FleetLink.now()).acks where ack.command == command.id {
                print("\(ack.relay): \(ack.ok ? "ok" : "failed"): \(ack.message)")
                succeeded = succeeded || ack.ok
                answered.insert(ack.relay)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        if !succeeded {
            print("no relay acknowledged \(action) successfully within \(wait) s")
            throw ExitCode(1)
        }
    }
}

/// `kvb-console recordings`: the sessions Kafka holds, as JSON, for scripts (what view 5 shows).
struct RecordingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recordings",
        abstract: "Print the sessions Kafka still holds of every topic, newest first, as JSON, then exit.",
        discussion: """
            The document of GET /api/recordings (docs/PROTOCOL.md), read straight from Kafka. Each listing
            reads for at most 2 s; it goes on until no topic is left unread, or --wait runs out (then
            pendingTopics names what was not read to its end).
            """
    )

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "Seconds to spend reading at most.")
    var wait: Double = 60

    @Option(help: "Sessions to print at most (1-\(RecordingCatalog.maxLimit)).")
    var limit: Int = RecordingCatalog.maxLimit

    func validate() throws {
        guard (1...RecordingCatalog.maxLimit).contains(limit) else { throw ValidationError("--limit must be from 1 to \(RecordingCatalog.maxLimit)") }
        guard wait > 0 else { throw ValidationError("--wait must be more than 0 seconds") }
    }

    func run() async throws {
        let catalog = try RecordingCatalog(kafka: kafka.kafkaConfiguration(), logger: kafka.makeLogger())
        let deadline = ContinuousClock.now + .milliseconds(Int64(wait * 1000))
        let list: RecordingList
        do {
            var read = try await catalog.list(limit: limit)
            while !read.pendingTopics.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(2))  // each answer serves callers for 2 s
                read = try await catalog.list(limit: limit)
            }
            list = read
        } catch {
            throw ValidationError("cannot read the recordings: \(error)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(list), as: UTF8.self))
    }
}
