import ControlPlane
import Foundation
import Kafka
import Logging
import NIOCore
import WebM

/// What Kafka still holds of each topic, read back on demand: its publisher sessions, and any of
/// them as a WebM file. A listing or download holds one of at most ``RelayLimits/recordingReaders``
/// reader slots, each with a Kafka consumer kept for the next when it is done; the sessions found
/// are remembered per topic (``maxIndexedTopics`` at most), so a listing reads only what is new
/// since the last.
final class TopicArchive: Sendable {
    private let kafka: KafkaConfiguration
    private let logger: Logger
    private let maxReaders: Int
    private let readers = Locked(0)
    /// Consumers of slots given back, for the next slots, with when (uptime ms); newest last.
    private let idleConsumers = Locked<[(consumer: KafkaConsumer, since: ContinuousClock.Instant)]>([])
    private let indexes = Locked<[String: SessionIndex]>([:])
    /// Where the next survey starts: the first topic the last one left unread.
    private let surveyCursor = Locked<String?>(nil)
    /// Topics found to hold other applications' records (looked at again after the directory's
    /// recheck time, 10 minutes).
    private let verdicts = Locked(TopicDirectory())
    /// Recordings indexed lately (a player asks for several ranges of one file), by session and extent.
    private let recordingIndexes = Locked<[String: (index: RecordingIndex, at: ContinuousClock.Instant)]>([:])

    /// Records asked for per blocking read, and how long a read may find nothing new before the
    /// cluster counts as unreachable.
    static let batchRecords = 64
    static let stallMilliseconds: Int64 = 10_000
    /// Recording indexes kept, and for how long (each holds a header and a few numbers per second
    /// of video).
    static let maxIndexes = 16
    /// Topics whose sessions are remembered; past it, one of the others is forgotten (and scanned
    /// again if asked for).
    static let maxIndexedTopics = 1_000
    static let indexLifetime: Duration = .seconds(300)

    init(kafka: KafkaConfiguration, maxReaders: Int, logger: Logger) {
        self.kafka = kafka
        self.maxReaders = maxReaders
        self.logger = logger
    }

    /// The sessions `topic` still holds, oldest first.
    func sessions(of topic: TopicName) async throws -> [RecordedSession] {
        try await withReader(topic) { reader in try await self.sessions(of: topic, using: reader).sessions }
    }

    /// A download of `session` of `topic` (its latest session when nil), or of the time from
    /// `from` to `to` (ms since the Unix epoch; from the latest keyframe at or before `from`, within
    /// the session playing then), indexed and ready to stream.
    func recording(of topic: TopicName, session: String?, from: Int64? = nil, to: Int64? = nil) async throws -> RecordingDownload {
        let slot = try await acquire()
        do {
            let reader = try await slot.reader(for: topic.value)
            let (sessions, marks) = try await self.sessions(of: topic, using: reader)
            var chosen: RecordedSession
            var start: Int64
            var method: TimeSearchMethod?
            if let from {
                guard let marks, let found = try await reader.start(at: from, marks: marks),
                      let playing = sessions.last(where: { $0.id == found.session })
                else { throw RecordingError.noSuchSession(topic: topic.value, session: nil) }
                method = found.method
                chosen = playing
                start = found.offset
            } else {
                guard let named = session.map({ id in sessions.last { $0.id == id } }) ?? sessions.last else {
                    throw RecordingError.noSuchSession(topic: topic.value, session: session)
                }
                chosen = named
                start = named.firstOffset
            }
            var end = chosen.lastOffset + 1
            if let to, let marks {
                let found = try await reader.offset(atTime: to, marks: marks)
                method = method ?? found.method
                end = min(end, max(start + 1, found.offset))
            }
            let key = "\(topic.value)/\(chosen.id)/\(start)-\(end)"
            let now = ContinuousClock.now
            let cached = recordingIndexes.withLock { cache -> RecordingIndex? in
                cache = cache.filter { now - $0.value.at < Self.indexLifetime }
                return cache[key]?.index
            }
            let index: RecordingIndex
            if let cached {
                index = cached
            } else {
                index = try await RecordingIndex.build(chosen, topic: topic.value, from: start, until: end, reader: reader)
                recordingIndexes.withLock { cache in
                    cache[key] = (index, now)
                    if cache.count > Self.maxIndexes, let oldest = cache.min(by: { $0.value.at < $1.value.at })?.key {
                        cache[oldest] = nil
                    }
                }
            }
            return RecordingDownload(index: index, range: nil, timeSearch: method, slot: slot)
        } catch {
            slot.release()
            throw error
        }
    }

    /// The sessions, and the watermarks they were read up to (nil: the cluster does not know the topic).
    private func sessions(of topic: TopicName, using reader: ArchiveReader) async throws
        -> (sessions: [RecordedSession], marks: KafkaWatermarks?) {
        let (index, marks) = try await update(topic, using: reader, until: nil)
        return (index.sessions, marks)
    }

    /// Reads what `topic` holds beyond its remembered index, until `deadline` (nil:
    /// to the end), and remembers the index. Nil watermarks: the cluster does not know the topic.
    /// `surveying`: a listing across topics, which stops at another application's records (a
    /// single topic's listing or download reads all there is).
    private func update(_ topic: TopicName, using reader: ArchiveReader, until deadline: ContinuousClock.Instant?, surveying: Bool = false)
        async throws -> (index: SessionIndex, marks: KafkaWatermarks?) {
        guard var marks = try await reader.watermarks() else { return (SessionIndex(), nil) }
        var index = indexes.withLock { $0[topic.value] } ?? SessionIndex()
        // Fewer records than were read: another reader may have read past this one's watermarks
        // since they were asked for; asked again now, after that reader stored its index, they
        // are still fewer only if the topic was deleted and made again.
        var remade = false
        if marks.high < index.nextOffset {
            guard let again = try await reader.watermarks() else { return (SessionIndex(), nil) }
            marks = again
            remade = marks.high < index.nextOffset
            if remade { index = SessionIndex() }
        }
        index.retain(from: marks.low)
        try await reader.read(from: index.nextOffset, until: marks.high, deadline: deadline) { message in
            index.add(StreamFragment(message), offset: message.offset, size: message.value.count)
            return !(surveying && index.isForeign)
        }
        let result = index
        indexes.withLock { indexes in
            guard !result.sessions.isEmpty || indexes[topic.value] != nil else { return }  // nothing to remember
            if indexes[topic.value] == nil, indexes.count >= Self.maxIndexedTopics, let other = indexes.keys.first {
                indexes[other] = nil
            }
            if remade || (indexes[topic.value]?.nextOffset ?? -1) <= result.nextOffset { indexes[topic.value] = result }
        }
        return (result, marks)
    }

    /// What a survey of many topics found.
    struct Survey: Sendable {
        /// The sessions of each topic that holds kvb streams.
        var sessions: [String: [RecordedSession]] = [:]
        /// Topics not read to their end by the deadline.
        var pending: [String] = []
    }

    /// Brings the sessions of every topic in `topics` up to date on one reader slot, reading
    /// until `deadline`: what is left waits for the next survey, which goes on from
    /// there. Topics that turn out to hold other applications' records are left out, and not
    /// read again until the directory's recheck time (10 minutes).
    func survey(_ topics: [TopicName], until deadline: ContinuousClock.Instant) async throws -> Survey {
        let now = currentMilliseconds()
        let skipped = verdicts.withLock { verdicts in Set(topics.map(\.value).filter { verdicts.verdict(for: $0, nowMilliseconds: now) == .foreign }) }
        let slot = try await acquire()
        defer { slot.release() }
        var survey = Survey()
        var failure: (any Error)?
        var read = 0
        // Round robin: from the first topic the last survey left unread, so topics late in the
        // order are not left pending for ever on a cluster with more than one survey can read.
        let cursor = surveyCursor.withLock { $0 }
        let ordered = cursor.map { cursor in topics.filter { $0.value >= cursor } + topics.filter { $0.value < cursor } } ?? topics
        for topic in ordered where !skipped.contains(topic.value) {
            guard ContinuousClock.now < deadline else {
                survey.pending.append(topic.value)
                continue
            }
            let index: SessionIndex
            let marks: KafkaWatermarks?
            do {
                (index, marks) = try await update(topic, using: try await slot.reader(for: topic.value), until: deadline, surveying: true)
                read += 1
            } catch {
                // One topic that cannot be read (deleted meanwhile, retention racing the read)
                // leaves the others listed; it is tried again by the next survey.
                logger.info("recordings: could not read \(topic): \(error)")
                failure = failure ?? error
                survey.pending.append(topic.value)
                continue
            }
            if index.isForeign {
                verdicts.withLock { $0.record(.foreign, for: topic.value, nowMilliseconds: now) }
                continue
            }
            if let marks, index.nextOffset < marks.high { survey.pending.append(topic.value) }
            if marks != nil, index.streamRecords > 0 || !index.sessions.isEmpty { survey.sessions[topic.value] = index.sessions }
        }
        surveyCursor.withLock { $0 = survey.pending.first }
        // Nothing could be read at all: Kafka is the trouble, not a topic.
        if read == 0, let failure { throw failure }
        return survey
    }

    private func withReader<T: Sendable>(_ topic: TopicName, _ body: @Sendable (ArchiveReader) async throws -> T) async throws -> T {
        let slot = try await acquire()
        defer { slot.release() }
        return try await body(try await slot.reader(for: topic.value))
    }

    /// How long a request waits for a reader slot before it is refused: a client that asks again
    /// as soon as its last download ends finds the slot that download is just giving back.
    static let slotWaitMilliseconds = 1_000

    /// One of the ``RelayLimits/recordingReaders`` slots, waiting up to ``slotWaitMilliseconds``
    /// for one to free; then a refusal.
    func acquire() async throws(RelayError) -> ReaderSlot {
        var waited = 0
        while true {
            let granted = readers.withLock { count in
                guard count < maxReaders else { return false }
                count += 1
                return true
            }
            if granted { return ReaderSlot(archive: self) }
            guard waited < Self.slotWaitMilliseconds, !Task.isCancelled else { break }
            try? await Task.sleep(for: .milliseconds(25))
            waited += 25
        }
        throw .limit(.recordingReaders, "this relay is already reading as many recordings from Kafka as it may at once (\(maxReaders)); try again shortly")
    }

    /// How long a consumer given back is kept for the next slot before it is closed (each holds
    /// a few librdkafka threads and buffers).
    static let idleConsumerLifetime: Duration = .seconds(60)

    /// A consumer for a reader slot: one given back earlier, or a new one.
    private func takeConsumer() async throws -> KafkaConsumer {
        if let idle = idleConsumers.withLock({ $0.popLast() }) { return idle.consumer }
        let kafka = kafka
        let logger = logger
        let made: Result<KafkaConsumer, KafkaError> = await runBlocking {
            do throws(KafkaError) { return .success(try KafkaConsumer(configuration: kafka, logger: logger)) } catch { return .failure(error) }
        }
        return try made.get()
    }

    /// Takes a slot's consumer back for the next: it stops reading, and waits (at most
    /// ``RelayLimits/recordingReaders`` of them; so downloads do not make a consumer each).
    /// Consumers found idle for longer than ``idleConsumerLifetime`` are closed then (the
    /// next slot given back after that long), so a burst of downloads does not keep its
    /// consumers while the relay goes on listing and downloading little.
    private func giveBack(_ consumer: KafkaConsumer?) {
        let now = ContinuousClock.now
        var closing: [KafkaConsumer] = []
        if let consumer {
            try? consumer.assign([])
            idleConsumers.withLock { idle in
                if idle.count < maxReaders { idle.append((consumer, now)) } else { closing.append(consumer) }
            }
        }
        let stale = { (entry: (consumer: KafkaConsumer, since: ContinuousClock.Instant)) in now - entry.since > Self.idleConsumerLifetime }
        idleConsumers.withLock { idle in
            closing += idle.filter(stale).map(\.consumer)
            idle.removeAll(where: stale)
        }
        // Closing waits for librdkafka's threads: not on the caller's task.
        if !closing.isEmpty { DispatchQueue.global().async { [closing] in for consumer in closing { consumer.close() } } }
        readers.withLock { $0 -= 1 }
    }

    /// One of the ``RelayLimits/recordingReaders`` slots, with its consumer; given back once.
    final class ReaderSlot: Sendable {
        private let archive: TopicArchive
        private let consumer = Locked<KafkaConsumer?>(nil)
        private let released = Locked(false)

        init(archive: TopicArchive) { self.archive = archive }

        /// A reader of `topic` on this slot's consumer.
        func reader(for topic: String) async throws -> ArchiveReader {
            if let consumer = consumer.withLock({ $0 }) { return ArchiveReader(consumer: consumer, topic: topic) }
            let made = try await archive.takeConsumer()
            consumer.withLock { $0 = made }
            return ArchiveReader(consumer: made, topic: topic)
        }

        func release() {
            guard released.withLock({ let was = $0; $0 = true; return !was }) else { return }
            archive.giveBack(consumer.withLock { $0 })
        }
    }
}

/// Why a recording cannot be had.
public enum RecordingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No such session in what the topic still holds (or no session at all).
    case noSuchSession(topic: String, session: String?)
    /// The session's records hold no point a player could start at.
    case noKeyframe(topic: String, session: String)
    /// What Kafka holds is not a WebM stream a file can be made of.
    case unreadable(String)

    public var description: String {
        switch self {
        case .noSuchSession(let topic, let session?): "topic \(topic) holds no session \(session.prefix(64)) (it may have left retention)"
        case .noSuchSession(let topic, nil): "topic \(topic) holds no recorded session"
        case .noKeyframe(let topic, let session): "session \(session) of \(topic) has no keyframe left in retention to start a file at"
        case .unreadable(let why): "the recording in Kafka cannot be made into a file: \(why)"
        }
    }
}

/// A consumer reading one topic from a given offset, a batch at a time on a dispatch thread.
final class ArchiveReader: Sendable {
    private let consumer: KafkaConsumer
    let topic: String

    init(consumer: KafkaConsumer, topic: String) {
        self.consumer = consumer
        self.topic = topic
    }

    static func open(kafka: KafkaConfiguration, topic: String, logger: Logger) async throws -> ArchiveReader {
        let result: Result<ArchiveReader, KafkaError> = await runBlocking {
            do throws(KafkaError) {
                return .success(ArchiveReader(consumer: try KafkaConsumer(configuration: kafka, logger: logger), topic: topic))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The topic's watermarks; nil when the cluster does not know the topic (nothing recorded).
    func watermarks() async throws(RelayError) -> KafkaWatermarks? {
        let consumer = consumer
        let topic = topic
        let result: Result<KafkaWatermarks, KafkaError> = await runBlocking {
            do throws(KafkaError) { return .success(try consumer.queryWatermarks(topic: topic, timeoutMilliseconds: 5000)) } catch { return .failure(error) }
        }
        switch result {
        case .success(let marks): return marks
        case .failure(let error) where error.isUnknownTopic: return nil
        case .failure(let error): throw .kafkaUnavailable(error.message)
        }
    }

    /// Reads the records from `from` up to (not including) `until`, in order, handing each to
    /// `visit` until it returns false. Throws when Kafka gives nothing for
    /// ``TopicArchive/stallMilliseconds``.
    /// `stallMilliseconds` nil: wait for new records for ever (a replay that reaches the live edge).
    /// `atEnd`: called each time the reader has everything the partition holds so far.
    /// `deadline`: stop reading then, even while Kafka is slow to answer.
    func read(from: Int64, until: Int64, stallMilliseconds: Int64? = TopicArchive.stallMilliseconds, deadline: ContinuousClock.Instant? = nil,
              atEnd: (() -> Void)? = nil, _ visit: (KafkaMessage) async throws -> Bool) async throws {
        guard from < until else { return }
        let consumer = consumer
        let topic = topic
        do {
            try consumer.assign(topic: topic, offset: .offset(from))
        } catch {
            throw RelayError.kafkaUnavailable(error.message)
        }
        var next = from
        var quietSince = ContinuousClock.now
        while next < until, !Task.isCancelled {
            if let deadline, ContinuousClock.now >= deadline { return }
            let batch: [KafkaConsumerEvent] = await runBlocking {
                var events: [KafkaConsumerEvent] = []
                while events.count < TopicArchive.batchRecords, let event = consumer.poll(timeoutMilliseconds: events.isEmpty ? 200 : 0) {
                    events.append(event)
                    if case .endOfPartition = event { break }
                }
                return events
            }
            var progressed = false
            for event in batch {
                switch event {
                case .message(let message) where message.topic == topic && message.offset >= next:
                    progressed = true
                    next = message.offset + 1
                    guard message.offset < until else { return }
                    guard try await visit(message) else { return }
                    if let deadline, ContinuousClock.now >= deadline { return }
                case .endOfPartition(let eofTopic, _, let offset):
                    guard eofTopic == topic else { break }
                    if offset >= until { return }
                    atEnd?()
                case .error(let error, _) where error.isOffsetOutOfRange || error.isUnknownTopic:
                    throw RelayError.kafkaUnavailable(error.message)
                default:
                    break
                }
            }
            let now = ContinuousClock.now
            if progressed {
                quietSince = now
            } else if let stallMilliseconds, now - quietSince > .milliseconds(stallMilliseconds) {
                throw RelayError.kafkaUnavailable("Kafka gave nothing of \(topic) from offset \(next) for \(stallMilliseconds / 1000) s")
            }
        }
    }

    /// The first record at or after `offset`, before `until`; nil when there is none.
    func first(atOrAfter offset: Int64, until: Int64) async throws -> KafkaMessage? {
        var found: KafkaMessage?
        try await read(from: offset, until: until) { message in
            found = message
            return false
        }
        return found
    }

    /// The first offset at or after `milliseconds` by offsets-for-times; nil where the cluster
    /// does not answer it (the embedded cluster).
    func offsetForTime(_ milliseconds: Int64) async -> Int64? {
        let consumer = consumer
        let topic = topic
        return await runBlocking { (try? consumer.offset(atTime: milliseconds, topic: topic)) ?? nil }
    }

    func close() { consumer.close() }
}

/// How a time was found in a topic.
public enum TimeSearchMethod: String, Sendable {
    /// The cluster's offsets-for-times (a real broker).
    case offsetsForTimes = "offsets-for-times"
    /// A binary search over the records' `kvb-ingest-ms` headers (``TimeSearch``), where the
    /// cluster does not answer offsets-for-times.
    case headerSearch = "header-search"
}

extension ArchiveReader {
    /// Where reading from `milliseconds` starts: an offset from which the first record read is
    /// the first at or after that time, found by offsets-for-times where the cluster answers it
    /// and by ``TimeSearch`` otherwise.
    func offset(atTime milliseconds: Int64, marks: KafkaWatermarks) async throws -> (offset: Int64, method: TimeSearchMethod) {
        if let found = await offsetForTime(milliseconds) {
            return (min(max(found, marks.low), marks.high), .offsetsForTimes)
        }
        var search = TimeSearch(milliseconds: milliseconds, low: marks.low, high: marks.high)
        while case .read(let asked) = search.next {
            let record = try await first(atOrAfter: asked, until: search.upper)
            let time = record.map { message in StreamFragment(message)?.ingestMilliseconds ?? message.timestamp ?? Int64.max }
            search.saw(asked: asked, offset: record?.offset, milliseconds: time)
        }
        guard case .found(let offset) = search.next else { return (marks.high, .headerSearch) }
        return (offset, .headerSearch)
    }

    /// The latest join point at or before `offset` whose time is at or before `milliseconds`,
    /// looking back up to ``maxLookBack`` records: the record to start reading from, and its
    /// session. Nil when there is none that far back.
    func joinPoint(before offset: Int64, milliseconds: Int64, low: Int64) async throws -> (offset: Int64, session: String)? {
        var window: Int64 = 64
        while true {
            let from = max(low, offset - window)
            var best: (offset: Int64, session: String)?
            var bySequence: [String: [UInt64: Int64]] = [:]
            try await read(from: from, until: offset + 1) { message in
                guard let fragment = StreamFragment(message), !fragment.isEnd else { return true }
                bySequence[fragment.session, default: [:]][fragment.sequence] = message.offset
                guard fragment.ingestMilliseconds <= milliseconds || best == nil else { return true }
                if fragment.joinAt != nil {
                    best = (message.offset, fragment.session)
                } else if let opening = fragment.joinFrom.flatMap({ bySequence[fragment.session]?[$0] }) {
                    best = (opening, fragment.session)
                }
                return true
            }
            if let best { return best }
            if from == low || window >= Self.maxLookBack { return nil }
            window *= 4
        }
    }

    /// Where a recording from `milliseconds` starts: the latest join point at or before that time
    /// (the record to read from, and its session), and how the time was found. Nil when the topic
    /// holds nothing there. `marks`: the topic's watermarks.
    func start(at milliseconds: Int64, marks: KafkaWatermarks) async throws
        -> (offset: Int64, session: String, method: TimeSearchMethod)? {
        guard marks.high > marks.low else { return nil }
        let found = try await offset(atTime: milliseconds, marks: marks)
        guard let join = try await joinPoint(before: min(found.offset, marks.high - 1), milliseconds: milliseconds, low: marks.low)
        else { return nil }
        return (join.offset, join.session, found.method)
    }

    /// Records looked back for a join point (about five minutes of a stream at 14 records a second).
    static let maxLookBack: Int64 = 4_096
}
