import ControlLink
import ControlPlane
import Foundation
import Kafka
import Logging
import Metrics
import Trust

/// A relay's part in the control plane: publishes its status to the status topic every second,
/// and applies the operator commands it reads from the control topic, answering each with an
/// acknowledgement on the same topic. Everything it publishes is signed with the operator key;
/// only commands signed with that key, fresh and never seen before are applied (``CommandGate``).
/// Without an operator key it applies no command at all.
public final class ControlPlaneAgent: Sendable {
    private let relay: Relay
    private let address: String
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let records: SignedRecords
    private let intervalMilliseconds: Int
    /// The poll loops, and whether ``stop()`` came (perhaps while ``start()`` was still busy).
    private let loops = Locked<(threads: [KafkaPollThread], stopped: Bool)>(([], false))
    private let gate: Locked<CommandGate>

    public init(relay: Relay, address: String, logger: Logger, intervalMilliseconds: Int = 1000) throws(KafkaError) {
        self.relay = relay
        self.address = address
        self.logger = logger
        self.intervalMilliseconds = intervalMilliseconds
        self.records = SignedRecords(operatorKey: relay.settings.operatorKey)
        self.gate = Locked(CommandGate(operatorKey: relay.settings.operatorKey != nil))
        // Statuses come once a second and commands are rare: fetching every 100 ms (rather than the
        // media consumer's 5) is quick enough and keeps an idle relay idle.
        var kafka = relay.kafka
        if kafka.properties["fetch.wait.max.ms"] == nil { kafka.properties["fetch.wait.max.ms"] = "100" }
        self.consumer = try KafkaConsumer(configuration: kafka, logger: logger)
    }

    /// Creates the control topics if needed and starts both loops. Blocking (a few Kafka round
    /// trips): call off the pool.
    public func start() {
        if relay.settings.operatorKey == nil {
            logger.warning("no operator key (KVB_OPERATOR_KEY or --operator-key-file): this relay applies no operator command")
        }
        // Create the topics first, with the relay's settings: a producer's or consumer's first
        // look at them could have a broker auto-create them with its defaults. (A cluster that
        // names no controller, like the embedded one in another process, is not asked.)
        for topic in [ControlTopics.status, ControlTopics.control] {
            do { try relay.createControlTopic(topic) } catch { logger.debug("could not create \(topic): \(error)") }
        }
        // Commands from the end if the topic exists, otherwise from its first record once it does;
        // statuses from the last few seconds, to know the fleet at once.
        let commands: KafkaOffset = (try? consumer.queryWatermarks(topic: ControlTopics.control, timeoutMilliseconds: 3000)).map { .offset($0.high) } ?? .beginning
        let statuses = consumer.recentStart(of: ControlTopics.status, milliseconds: Relay.peerFreshMilliseconds, logger: logger)
        do {
            try consumer.assign([(ControlTopics.control, 0, commands), (ControlTopics.status, 0, statuses)])
        } catch {
            logger.error("cannot read the control topics: \(error)")
        }

        // Acknowledgements and statuses should leave at once, not after a metadata lookup.
        relay.producer.prepare(topic: ControlTopics.control)
        relay.producer.prepare(topic: ControlTopics.status)
        let commandLoop = KafkaPollThread(name: "kvb-control") { [weak self] in self?.pollCommands() }
        let interval = intervalMilliseconds
        let statusLoop = KafkaPollThread(name: "kvb-status") { [weak self] in
            self?.publishStatus()
            Thread.sleep(forTimeInterval: Double(interval) / 1000)
        }
        let stoppedMeanwhile = loops.withLock { loops -> Bool in
            if !loops.stopped { loops.threads = [commandLoop, statusLoop] }
            return loops.stopped
        }
        if stoppedMeanwhile {
            commandLoop.stop()
            statusLoop.stop()
        }
    }

    private func pollCommands() {
        guard case .message(let message)? = consumer.poll(timeoutMilliseconds: 100) else { return }
        if message.topic == ControlTopics.status {
            // Peers' statuses feed only the topic list's "live" marks.
            if let refusal = records.refusal(ofStatus: message) {
                Counter(label: "kvb_status_ignored_total", dimensions: [("reason", refusal == .unsigned ? "unsigned" : "bad_signature")]).increment()
                return
            }
            if let status = ControlPlaneCodec.decodeStatus(message.value) { relay.recordPeerStatus(status) }
            return
        }
        let decoded = ControlPlaneCodec.decodeControl(message.value)
        let signature = records.verify(message)
        let verdict = gate.withLock { $0.admit(decoded, signature: signature, nowMilliseconds: currentMilliseconds()) }
        switch verdict {
        case .ignore:
            return
        case .refuse(let reason):
            Counter(label: "kvb_commands_rejected_total", dimensions: [("reason", reason)]).increment()
            logger.notice("refused a record on \(ControlTopics.control): \(reason)", metadata: ["offset": "\(message.offset)"])
        case .apply(let command):
            let relay = self.relay
            let logger = self.logger
            let records = self.records
            let gate = self.gate
            Task {
                guard let ack = await relay.apply(command) else { return }
                gate.withLock { $0.noteApplied() }
                Counter(label: "kvb_commands_applied_total").increment()
                do {
                    try relay.producer.send(records.record(.ack(ack)), id: 0)
                } catch {
                    logger.warning("could not acknowledge command \(command.id): \(error)")
                }
            }
        }
    }

    private func publishStatus() {
        var status = relay.status(address: address)
        status.commands = gate.withLock { $0.intake }
        do {
            try relay.producer.send(records.record(status), id: 0)
        } catch {
            logger.debug("could not publish status: \(error)")
        }
    }

    /// Stops both loops and closes the consumer. Blocking.
    public func stop() {
        let running = loops.withLock { loops -> [KafkaPollThread] in
            defer { loops = ([], true) }
            return loops.threads
        }
        for thread in running { thread.stop() }
        consumer.close()
    }
}
