import Foundation
import Kafka
import Logging

/// Whether Kafka answers: a broker metadata probe every ``interval`` on its own thread, and the
/// producer's "all brokers down" errors as soon as they happen. `/healthz`, publishers' stats
/// and new feeds read it.
final class KafkaHealthMonitor: Sendable {
    private let admin: KafkaAdmin
    private let logger: Logger
    private let problem = Locked<(reason: String, since: Int64)?>(nil)
    private let thread = Locked<KafkaPollThread?>(nil)
    private let interval: TimeInterval
    private let nextProbe = Locked<Date>(.distantPast)

    init(admin: KafkaAdmin, logger: Logger, interval: TimeInterval = 2) {
        self.admin = admin
        self.logger = logger
        self.interval = interval
    }

    /// Why Kafka is unreachable, and since when (ms); nil while it answers.
    var current: (reason: String, since: Int64)? { problem.withLock { $0 } }

    func start() {
        // Short slices, so stopping never waits out a whole interval.
        let poller = KafkaPollThread(name: "kvb-kafka-health") { [weak self] in
            guard let self else { return }
            let due = self.nextProbe.withLock { next -> Bool in
                guard Date() >= next else { return false }
                next = Date().addingTimeInterval(self.interval)
                return true
            }
            if due { self.probe() } else { Thread.sleep(forTimeInterval: 0.1) }
        }
        thread.withLock { $0 = poller }
    }

    private func probe() {
        do {
            try admin.ping(timeoutMilliseconds: 1500)
            markReachable()
        } catch {
            markUnreachable(error.message)
        }
    }

    /// librdkafka reported an error on the producer: all brokers down is news at once.
    func noteError(_ error: KafkaError) {
        if error.isAllBrokersDown { markUnreachable(error.message) }
    }

    private func markReachable() {
        let was = problem.withLock { value -> (reason: String, since: Int64)? in
            defer { value = nil }
            return value
        }
        if let was {
            logger.notice("Kafka is reachable again", metadata: ["after_ms": "\(currentMilliseconds() - was.since)"])
        }
    }

    private func markUnreachable(_ reason: String) {
        let isNew = problem.withLock { value -> Bool in
            if value == nil {
                value = (reason, currentMilliseconds())
                return true
            }
            value?.reason = reason
            return false
        }
        if isNew { logger.warning("Kafka is unreachable: \(reason)") }
    }

    func stop() {
        thread.withLock { $0 }?.stop()
    }
}
