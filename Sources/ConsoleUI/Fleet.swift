import ControlPlane

/// Everything the console knows: the latest status of every relay, with when it arrived, and a
/// short history of latency for sparklines. Pure state; the console feeds it from Kafka.
public struct Fleet: Sendable {
    public struct Entry: Sendable, Equatable {
        public var status: RelayStatus
        public var receivedAtMilliseconds: Int64
    }

    /// A relay that has not reported for this long is shown as stale.
    public var staleAfterMilliseconds: Int64 = 3_000
    /// ... and for this long is dropped.
    public var dropAfterMilliseconds: Int64 = 15_000
    public private(set) var relays: [String: Entry] = [:]
    /// Relays that list their viewers a page per document: the latest of each page, by index.
    private var viewerPages: [String: [Int: (viewers: [SessionStatus], receivedAtMilliseconds: Int64)]] = [:]
    /// Recent p50 latency per "relay/topic", newest last: of the most end-to-end stage the topic
    /// reports (``LatencySummary/Stage/glass`` where viewers measure it, else `written`, else
    /// `consumed`).
    public private(set) var latencyHistory: [String: [Double]] = [:]
    public static let historyLength = 60
    /// The sessions Kafka holds across the cluster's topics, newest first, as the console last
    /// read them from Kafka; nil until it has.
    public var recordings: RecordingList?
    /// Why the recordings could not be read lately, if so.
    public var recordingsProblem: String?

    public init() {}

    /// Where a browser reaches `relay` (its reported address), or else any relay still reporting:
    /// for links to recordings. Nil when no relay reports.
    public func address(preferring relay: String, nowMilliseconds now: Int64) -> String? {
        if let entry = relays[relay], !isStale(relay, nowMilliseconds: now) { return entry.status.address }
        return sortedRelays.first { !isStale($0.status.relay, nowMilliseconds: now) }?.status.address
    }

    public mutating func apply(_ status: RelayStatus, receivedAtMilliseconds: Int64) {
        if let existing = relays[status.relay], existing.status.sentAtMilliseconds > status.sentAtMilliseconds { return }
        relays[status.relay] = Entry(status: status, receivedAtMilliseconds: receivedAtMilliseconds)
        if let page = status.viewerPage, page.count > 0, page.index >= 0, page.index < page.count {
            // A page is kept until it comes round again; pages past the count, or not seen for a
            // whole round (and a margin), are gone.
            var pages = viewerPages[status.relay] ?? [:]
            pages[page.index] = (status.sessions.filter { $0.role == .viewer }, receivedAtMilliseconds)
            let round = Int64(min(page.count, 10_000)) * 1_000 + 5_000
            viewerPages[status.relay] = pages.filter {
                $0.key < page.count && receivedAtMilliseconds.saturatingSubtract($0.value.receivedAtMilliseconds) <= round
            }
        } else {
            viewerPages[status.relay] = nil
        }
        for topic in status.topics {
            let key = "\(status.relay)/\(topic.name)"
            let value = Self.endToEndStages.lazy.compactMap { stage in topic.latency.first { $0.stage == stage }?.p50 }.first
            if let value {
                var history = latencyHistory[key, default: []]
                history.append(value)
                if history.count > Self.historyLength { history.removeFirst(history.count - Self.historyLength) }
                latencyHistory[key] = history
            }
        }
    }

    /// The stages a sparkline follows, most end to end first.
    public static let endToEndStages: [LatencySummary.Stage] = [.glass, .written, .consumed]

    /// Forgets relays silent for longer than ``dropAfterMilliseconds``.
    public mutating func expire(nowMilliseconds: Int64) {
        for (id, entry) in relays where nowMilliseconds.saturatingSubtract(entry.receivedAtMilliseconds) > dropAfterMilliseconds {
            relays[id] = nil
            viewerPages[id] = nil
            latencyHistory = latencyHistory.filter { !$0.key.hasPrefix(id + "/") }
        }
    }

    public func isStale(_ relay: String, nowMilliseconds: Int64) -> Bool {
        guard let entry = relays[relay] else { return true }
        return nowMilliseconds.saturatingSubtract(entry.receivedAtMilliseconds) > staleAfterMilliseconds
    }

    /// Relays sorted by id.
    public var sortedRelays: [Entry] { relays.values.sorted { $0.status.relay < $1.status.relay } }

    /// Every topic any relay reports, sorted.
    public var topicNames: [String] {
        Array(Set(relays.values.flatMap { $0.status.topics.map(\.name) })).sorted()
    }

    /// All sessions with their relay: for a relay that lists its viewers in pages, its publishers
    /// and the viewers of every page seen (each once).
    public var sessions: [(relay: String, session: SessionStatus)] {
        sortedRelays.flatMap { entry -> [(relay: String, session: SessionStatus)] in
            let relay = entry.status.relay
            guard let pages = viewerPages[relay] else { return entry.status.sessions.map { (relay, $0) } }
            var seen = Set<String>()
            let publishers = entry.status.sessions.filter { $0.role == .publisher }
            let viewers = pages.sorted { $0.key < $1.key }.flatMap(\.value.viewers).filter { seen.insert($0.id).inserted }
            return (publishers + viewers).map { (relay, $0) }
        }
    }

    /// A topic summed over relays: rates add up, lag and latency take the worst relay.
    public struct TopicAggregate: Sendable, Equatable {
        public var name: String
        public var paused: Bool
        public var publishers: Int
        public var viewers: Int
        public var relays: Int
        public var inBytesPerSecond: Double
        public var inFragmentsPerSecond: Double
        public var outBytesPerSecond: Double
        public var outFragmentsPerSecond: Double
        public var highWatermark: Int64?
        /// Records Kafka holds of the topic (what can be rewound into and downloaded).
        public var retainedRecords: Int64?
        public var maxLag: Int64?
        public var writtenP50: Double?
        /// Glass to glass p50 of the worst relay, where viewers measure it.
        public var glassP50: Double?
    }

    public var topics: [TopicAggregate] {
        var byName: [String: TopicAggregate] = [:]
        for entry in relays.values {
            for topic in entry.status.topics {
                var aggregate = byName[topic.name] ?? TopicAggregate(
                    name: topic.name, paused: false, publishers: 0, viewers: 0, relays: 0, inBytesPerSecond: 0,
                    inFragmentsPerSecond: 0, outBytesPerSecond: 0, outFragmentsPerSecond: 0)
                aggregate.paused = aggregate.paused || topic.paused
                aggregate.publishers = aggregate.publishers.saturatingAdd(topic.publishers)
                aggregate.viewers = aggregate.viewers.saturatingAdd(topic.viewers)
                aggregate.relays += 1
                aggregate.inBytesPerSecond += topic.inBytesPerSecond
                aggregate.inFragmentsPerSecond += topic.inFragmentsPerSecond
                aggregate.outBytesPerSecond += topic.outBytesPerSecond
                aggregate.outFragmentsPerSecond += topic.outFragmentsPerSecond
                if let consumer = topic.consumer {
                    aggregate.highWatermark = max(aggregate.highWatermark ?? 0, consumer.highWatermark)
                    if let retained = consumer.retainedRecords { aggregate.retainedRecords = max(aggregate.retainedRecords ?? 0, retained) }
                    aggregate.maxLag = max(aggregate.maxLag ?? 0, consumer.lag)
                }
                if let written = topic.latency.first(where: { $0.stage == .written })?.p50 {
                    aggregate.writtenP50 = max(aggregate.writtenP50 ?? 0, written)
                }
                if let glass = topic.latency.first(where: { $0.stage == .glass })?.p50 {
                    aggregate.glassP50 = max(aggregate.glassP50 ?? 0, glass)
                }
                byName[topic.name] = aggregate
            }
        }
        return byName.values.sorted { $0.name < $1.name }
    }
}
