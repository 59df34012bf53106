import ControlPlane
import Foundation
import Kafka
import Logging

/// A relay's part in the control plane: publishes its status to the status topic every second,
/// and applies the operator commands it reads from the control topic (once each, by id),
/// answering with an acknowledgement on the same topic.
public final class ControlPlaneAgent: Sendable {
    private let relay: Relay
    private let address: String
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let intervalMilliseconds: Int
    private let threads = Locked<[KafkaPollThread]>([])
    private let seen = Locked<(ids: Set<String>, order: [String])>(([], []))
    /// Commands older than this (a relay catching up on old records) are ignored.
    static let maxCommandAgeMilliseconds: Int64 = 30_000

    public init(relay: Relay, address: String, logger: Logger, intervalMilliseconds: Int = 1000) throws(KafkaError) {
        self.relay = relay
        self.address = address
        self.logger = logger
        self.intervalMilliseconds = intervalMilliseconds
        self.consumer = try KafkaConsumer(configuration: relay.kafka, logger: logger)
    }

    /// Creates the control topics if needed and starts both loops. Blocking: call off the pool.
    public func start() {
        // Commands from the end if the topic exists, otherwise from its first record once it does;
        // statuses from a few records back, to know the fleet at once.
        let commands: KafkaOffset = (try? consumer.queryWatermarks(topic: ControlTopics.control, timeoutMilliseconds: 3000)).map { .offset($0.high) } ?? .beginning
        let statuses: KafkaOffset = (try? consumer.queryWatermarks(topic: ControlTopics.status, timeoutMilliseconds: 3000)).map { .offset(max($0.low, $0.high - 50)) } ?? .beginning
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
        threads.withLock { $0 = [commandLoop, statusLoop] }
        // Create the topics last, in the background: some clusters never answer CreateTopics
        // (the embedded one in another process), and commands must not wait for that.
        let relay = self.relay
        let logger = self.logger
        DispatchQueue.global().async {
            for topic in [ControlTopics.status, ControlTopics.control] {
                do { try relay.createControlTopic(topic) } catch { logger.debug("could not create \(topic): \(error)") }
            }
        }
    }

    private func pollCommands() {
        guard case .message(let message)? = consumer.poll(timeoutMilliseconds: 100) else { return }
        if message.topic == ControlTopics.status {
            if let status = ControlPlaneCodec.decodeStatus(message.value) { relay.recordPeerStatus(status) }
            return
        }
        guard let decoded = ControlPlaneCodec.decodeControl(message.value) else {
            logger.debug("ignoring an unreadable record on \(ControlTopics.control)", metadata: ["offset": "\(message.offset)"])
            return
        }
        guard case .command(let command) = decoded else { return }
        guard currentMilliseconds() - command.issuedAtMilliseconds < Self.maxCommandAgeMilliseconds else { return }
        let isNew = seen.withLock { seen -> Bool in
            guard seen.ids.insert(command.id).inserted else { return false }
            seen.order.append(command.id)
            if seen.order.count > 2000 { seen.ids.remove(seen.order.removeFirst()) }
            return true
        }
        guard isNew else { return }
        let relay = self.relay
        let logger = self.logger
        Task {
            guard let ack = await relay.apply(command) else { return }
            do {
                try relay.producer.send(KafkaOutgoingMessage(topic: ControlTopics.control, key: Array(command.id.utf8),
                                                             value: ControlPlaneCodec.encode(.ack(ack))), id: 0)
            } catch {
                logger.warning("could not acknowledge command \(command.id): \(error)")
            }
        }
    }

    private func publishStatus() {
        let status = relay.status(address: address)
        do {
            try relay.producer.send(KafkaOutgoingMessage(topic: ControlTopics.status, key: Array(status.relay.utf8),
                                                         value: ControlPlaneCodec.encode(status)), id: 0)
        } catch {
            logger.debug("could not publish status: \(error)")
        }
    }

    /// Stops both loops and closes the consumer. Blocking.
    public func stop() {
        let running = threads.withLock { threads -> [KafkaPollThread] in
            defer { threads = [] }
            return threads
        }
        for thread in running { thread.stop() }
        consumer.close()
    }
}
