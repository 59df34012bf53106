import ControlPlane
import Foundation
import Kafka
import Logging

/// The sessions Kafka holds across every stream topic of the cluster, newest first: what the
/// front page and the console list as recordings.
///
/// Listing reads each topic only beyond what an earlier listing read (the archive remembers each
/// topic's sessions), on one reader slot and for at most ``Options/budgetMilliseconds``; a topic
/// left unread by then is named pending and read on by the next listing. Listings within
/// ``Options/reuseMilliseconds`` of each other share one answer, and callers that ask while one
/// is being made wait for it, so many open front pages cost one read.
public final class RecordingCatalog: Sendable {
    /// How much a listing may read, and for how long its answer serves.
    public struct Options: Sendable {
        /// The longest one listing reads Kafka for. Default 2 s.
        public var budgetMilliseconds: Int64 = 2_000
        /// How long an answer is given again to later callers. Default 2 s.
        public var reuseMilliseconds: Int64 = 2_000

        public init() {}
    }

    /// Sessions returned at most by one listing.
    public static let maxLimit = 1_000

    private let archive: TopicArchive
    private let topics: @Sendable () async -> [TopicName]?
    private let options: Options
    private let latest = Locked<(list: RecordingList, at: ContinuousClock.Instant)?>(nil)
    private let running = Locked<Task<RecordingList, any Error>?>(nil)

    init(archive: TopicArchive, options: Options = Options(), topics: @escaping @Sendable () async -> [TopicName]?) {
        self.archive = archive
        self.options = options
        self.topics = topics
    }

    /// A catalog of its own for a process that is not a relay (the console): one reader
    /// consumer, and every topic the cluster lists except kvb's control topics (topics found to
    /// hold other applications' records are left out as the listing meets them).
    public convenience init(kafka: KafkaConfiguration, options: Options = Options(), logger: Logger) throws(KafkaError) {
        let admin = try KafkaAdmin(configuration: kafka, logger: logger)
        self.init(archive: TopicArchive(kafka: kafka, maxReaders: 1, logger: logger), options: options) {
            await runBlocking { (try? admin.listTopics(timeoutMilliseconds: 5000)).map { Self.streamTopics($0.map(\.name)) } }
        }
    }

    /// The topics of a cluster listing that may hold streams: valid stream names, without kvb's
    /// control topics, sorted.
    static func streamTopics(_ names: some Sequence<String>) -> [TopicName] {
        let control: Set<String> = [ControlTopics.status, ControlTopics.control]
        return names.filter { !control.contains($0) }.compactMap { try? TopicName($0) }.sorted()
    }

    /// The newest `limit` sessions (at most ``maxLimit``). Throws when Kafka cannot be read, or
    /// every reader slot is busy and there is no earlier answer to give.
    public func list(limit: Int) async throws -> RecordingList {
        let limit = min(max(0, limit), Self.maxLimit)
        if let latest = latest.withLock({ $0 }), ContinuousClock.now - latest.at < .milliseconds(options.reuseMilliseconds) {
            return Self.trimmed(latest.list, to: limit)
        }
        let task = running.withLock { running -> Task<RecordingList, any Error> in
            if let running { return running }
            let made = Task { try await self.make() }
            running = made
            return made
        }
        do {
            let list = try await task.value
            return Self.trimmed(list, to: limit)
        } catch RelayError.limit(let which, let message) {
            // Every slot is downloading: an older answer is better than none.
            if let latest = latest.withLock({ $0 }) { return Self.trimmed(latest.list, to: limit) }
            throw RelayError.limit(which, message)
        }
    }

    private func make() async throws -> RecordingList {
        defer { running.withLock { $0 = nil } }
        guard let topics = await topics() else { throw RelayError.kafkaUnavailable("the cluster's topics could not be listed") }
        let deadline = ContinuousClock.now + .milliseconds(max(0, options.budgetMilliseconds))
        let survey = try await archive.survey(topics, until: deadline)
        let list = RecordingList(sessions: survey.sessions, limit: Self.maxLimit, pendingTopics: survey.pending,
                                 madeAtMilliseconds: currentMilliseconds())
        latest.withLock { $0 = (list, ContinuousClock.now) }
        return list
    }

    private static func trimmed(_ list: RecordingList, to limit: Int) -> RecordingList {
        var list = list
        list.recordings = Array(list.recordings.prefix(limit))
        return list
    }
}
