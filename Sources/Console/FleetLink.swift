import ConsoleUI
import ControlLink
import ControlPlane
import Foundation
import Kafka
import Logging
import Trust

/// The console's connection to the fleet: reads relay status documents and command
/// acknowledgements from Kafka on its own thread, and publishes commands, all signed with the
/// operator key. Status documents and acknowledgements whose signature fails are ignored (and
/// counted). Without a key the console is read-only and what it shows is unverified. Never dies
/// on a bad record or on Kafka going away: it counts, reports and keeps retrying.
final class FleetLink: Sendable {
    struct Snapshot: Sendable {
        var fleet = Fleet()
        var acks: [CommandAck] = []
        /// Records that are not control-plane documents.
        var ignoredRecords = 0
        /// Records ignored because they were unsigned or their signature failed.
        var forgedRecords = 0
        var lastError: String?
        var lastErrorAt: Int64 = 0
        var lastRecordAt: Int64 = 0
    }

    let bootstrap: String
    /// Where the operator key came from; nil when the console has none (read-only).
    let keySource: String?
    private let records: SignedRecords
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let state = Locked(Snapshot())
    private let thread: Locked<KafkaPollThread?> = Locked(nil)
    private let logger: Logger

    init(configuration: KafkaConfiguration, operatorKey: (key: Secret, source: String)?, logger: Logger) throws(KafkaError) {
        self.logger = logger
        bootstrap = configuration.bootstrapServers
        keySource = operatorKey?.source
        records = SignedRecords(operatorKey: operatorKey?.key)
        consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        let state = self.state
        producer = try KafkaProducer(configuration: configuration, logger: logger, onError: { error in
            state.withLock {
                $0.lastError = error.message
                $0.lastErrorAt = Self.now()
            }
        }) { report in
            if let error = report.error {
                state.withLock {
                    $0.lastError = "command not delivered: \(error.message)"
                    $0.lastErrorAt = Self.now()
                }
            }
        }
    }

    /// Assigns the status topic (the last 10 s of it, to see every relay at once) and the control
    /// topic (from its end, for acknowledgements), then starts polling. Blocking for a moment.
    func start() {
        let commands = (try? consumer.queryWatermarks(topic: ControlTopics.control, timeoutMilliseconds: 2000)).map { KafkaOffset.offset($0.high) } ?? .beginning
        let assignment: [(topic: String, partition: Int32, offset: KafkaOffset)] = [
            (ControlTopics.status, 0, consumer.recentStart(of: ControlTopics.status, milliseconds: 10_000, fallbackRecords: 200, logger: logger)),
            (ControlTopics.control, 0, commands),
        ]
        do { try consumer.assign(assignment) } catch { record(error: error.message) }
        // The first command should leave at once, not after a metadata lookup.
        producer.prepare(topic: ControlTopics.control)
        let poller = KafkaPollThread(name: "kvb-console-poll") { [weak self] in self?.pollOnce() }
        thread.withLock { $0 = poller }
    }

    private func pollOnce() {
        guard let event = consumer.poll(timeoutMilliseconds: 100) else { return }
        switch event {
        case .message(let message):
            let now = Self.now()
            if message.topic == ControlTopics.status {
                guard records.refusal(ofStatus: message) == nil else {
                    state.withLock { $0.forgedRecords += 1 }
                    return
                }
                guard let status = ControlPlaneCodec.decodeStatus(message.value) else {
                    state.withLock { $0.ignoredRecords += 1 }
                    return
                }
                state.withLock {
                    $0.fleet.apply(status, receivedAtMilliseconds: Self.receivedAt(status, now: now))
                    $0.lastRecordAt = now
                    $0.lastError = nil
                }
            } else if case .ack(let ack)? = ControlPlaneCodec.decodeControl(message.value) {
                // Only acknowledgements signed with the operator key (so none without one).
                guard records.verify(message) == .valid else {
                    state.withLock { $0.forgedRecords += 1 }
                    return
                }
                state.withLock {
                    $0.acks.append(ack)
                    if $0.acks.count > 1000 { $0.acks.removeFirst($0.acks.count - 1000) }
                }
            }
        case .endOfPartition:
            break
        case .error(let error, _):
            record(error: error.message)
        }
    }

    /// Old documents (read back at start) count from when they were sent, so a relay that
    /// stopped long ago shows as stale and is dropped rather than live.
    private static func receivedAt(_ status: RelayStatus, now: Int64) -> Int64 {
        min(now, status.sentAtMilliseconds)
    }

    private func record(error: String) {
        state.withLock {
            $0.lastError = error
            $0.lastErrorAt = Self.now()
        }
    }

    /// Takes the fleet as it is now, and the acknowledgements received since the last call.
    func take(nowMilliseconds: Int64) -> Snapshot {
        state.withLock { state in
            state.fleet.expire(nowMilliseconds: nowMilliseconds)
            let snapshot = state
            state.acks.removeAll()
            return snapshot
        }
    }

    /// Publishes a command on the control topic, signed. Without an operator key nothing is sent:
    /// relays would refuse it.
    func send(_ command: ControlCommand) throws(KafkaError) {
        guard records.signer != nil else { throw KafkaError(Self.readOnlyMessage) }
        try producer.send(records.record(.command(command)), id: 0)
    }

    static let readOnlyMessage = "read-only: no operator key (KVB_OPERATOR_KEY, --operator-key-file or .kvb/operator.key); relays apply only signed commands"

    func stop() {
        thread.withLock { $0 }?.stop()
        consumer.close()
        producer.flush(timeoutMilliseconds: 1000)
        producer.close()
    }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}
