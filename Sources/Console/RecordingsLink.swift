import ConsoleUI
import ControlPlane
import Foundation
import Kafka
import Logging
import Relay

/// The console's reading of what Kafka holds: the recorded sessions of every stream topic, read
/// straight from Kafka (as the relays read them, so it needs no relay and no watch token), every
/// ``refreshSeconds`` once the operator first asks for them. Each refresh reads only what is new
/// since the last, for at most a couple of seconds.
final class RecordingsLink: Sendable {
    /// The latest list, or why it could not be read.
    struct Latest: Sendable {
        var list: RecordingList?
        var problem: String?
    }

    static let refreshSeconds = 5

    private let catalog: RecordingCatalog
    private let latest = Locked(Latest())
    private let task = Locked<Task<Void, Never>?>(nil)
    private let logger: Logger

    init(configuration: KafkaConfiguration, logger: Logger) throws(KafkaError) {
        catalog = try RecordingCatalog(kafka: configuration, logger: logger)
        self.logger = logger
    }

    /// Starts reading, if it has not started (reading media topics is not free, so the console
    /// reads them only once the operator looks).
    func want() {
        task.withLock { task in
            guard task == nil else { return }
            task = Task { [catalog, latest, logger] in
                while !Task.isCancelled {
                    do {
                        let list = try await catalog.list(limit: RecordingCatalog.maxLimit)
                        latest.withLock { $0 = Latest(list: list, problem: nil) }
                    } catch {
                        logger.warning("reading the recordings: \(error)")
                        latest.withLock { $0.problem = "\(error)" }
                    }
                    try? await Task.sleep(for: .seconds(Self.refreshSeconds))
                }
            }
        }
    }

    /// The latest reading, into `fleet`.
    func fill(_ fleet: inout Fleet) {
        let latest = latest.withLock { $0 }
        fleet.recordings = latest.list
        fleet.recordingsProblem = latest.problem
    }

    func stop() {
        task.withLock { $0 }?.cancel()
    }
}
