import Foundation
import Kafka
import Logging

extension Relay {
    /// Viewers watching from an earlier time (each with its own reader), for the status and kicks.
    public var replayViewers: [ViewerConnection] { state.withLock { $0.replays.values.map(\.viewer) } }

    /// A viewer of `topic` from `milliseconds` (ms since the Unix epoch) on: it starts at the
    /// latest keyframe at or before that time and gets the stream at the pace it was recorded,
    /// from Kafka, through sessions as they follow one another, staying that far behind. Its
    /// page goes back to live by opening an ordinary viewer. Each holds a Kafka consumer of its
    /// own: at most ``RelayLimits/replayViewers`` at once.
    public func openReplayViewer(topic: TopicName, from milliseconds: Int64, token: String? = nil, remoteAddress: String,
                                 remoteHost: String = "", userAgent: String = "", clientID: String = "",
                                 transport: any ViewerTransport) async throws(RelayError) -> ViewerConnection {
        let now = currentMilliseconds()
        let tokenExpiry = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: now / 1000)
        let limit = settings.limits.replayViewers
        let viewer = try openViewerLocked(topic: topic, now: now, remoteAddress: remoteAddress, remoteHost: remoteHost,
                                          userAgent: userAgent, clientID: clientID, tokenExpiry: tokenExpiry, transport: transport)
        // Find where to start before taking a place: a search reads a few records.
        let start: (offset: Int64, session: String)
        do {
            let reader = try await ArchiveReader.open(kafka: kafka, topic: topic.value, logger: logger)
            defer { reader.close() }
            guard let marks = try await reader.watermarks(), marks.high > marks.low else {
                throw RelayError.nothingToReplay("topic \(topic) holds nothing to watch from that time")
            }
            let found = try await reader.offset(atTime: milliseconds, marks: marks)
            guard let join = try await reader.joinPoint(before: min(found.offset, marks.high - 1), milliseconds: milliseconds, low: marks.low) else {
                throw RelayError.nothingToReplay("topic \(topic) holds no keyframe at or before that time")
            }
            start = join
            logger.info("replaying \(topic) for \(viewer.id) from offset \(join.offset)",
                        metadata: ["from": "\(milliseconds)", "search": "\(found.method.rawValue)"])
        } catch let error as RelayError {
            throw error
        } catch {
            throw .kafkaUnavailable("\(error)")
        }
        let kafka = kafka
        let logger = logger
        let admitted = state.withLock { state -> Bool in
            guard state.replays.count < limit else { return false }
            state.replays[viewer.number] = (viewer, Task {
                await Self.replay(topic: topic.value, from: start.offset, to: viewer, kafka: kafka, logger: logger)
            })
            return true
        }
        guard admitted else {
            throw .limit(.replayViewers, "this relay already serves \(limit) viewers watching from an earlier time (its limit); watch live or try another relay")
        }
        viewer.send(notice: ViewerNotice.hello(topic: topic, relay: settings.relayID))
        return viewer
    }

    /// Reads `topic` from `offset` and hands each fragment to `viewer` when its time comes: as
    /// long after the first as it was recorded after it (a pause between sessions counts as
    /// ``replayGapMilliseconds`` at most). Ends when the viewer is closed.
    private static func replay(topic: String, from offset: Int64, to viewer: ViewerConnection, kafka: KafkaConfiguration,
                               logger: Logger) async {
        var cache = KeyframeCache(maxBytes: 16 << 20)
        // Where the recording's clock and the wall clock line up, moved on across pauses.
        var origin: (recorded: Int64, wall: Int64)?
        var lastRecorded: Int64?
        do {
            let reader = try await ArchiveReader.open(kafka: kafka, topic: topic, logger: logger)
            defer { reader.close() }
            try await reader.read(from: offset, until: Int64.max, stallMilliseconds: nil) { message in
                guard !viewer.isClosed else { return false }
                guard let fragment = StreamFragment(message) else { return true }
                let recorded = fragment.ingestMilliseconds
                if let last = lastRecorded, let current = origin, recorded - last > replayGapMilliseconds || recorded < last {
                    origin = (recorded, current.wall + (last - current.recorded) + replayGapMilliseconds)
                }
                lastRecorded = recorded
                let anchor = origin ?? (recorded, currentMilliseconds())
                origin = anchor
                let due = anchor.wall + (recorded - anchor.recorded)
                let wait = due - currentMilliseconds()
                if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) }
                let group = cache.add(fragment) ? cache.fragments : []
                viewer.offer(fragment, joinGroup: group)
                viewer.schedulePump()
                return !viewer.isClosed
            }
        } catch is CancellationError {
        } catch {
            logger.warning("replay of \(topic) for \(viewer.id) stopped: \(error)")
            viewer.close(.init(code: 4503, reason: "the relay could not read the recording from Kafka; try again"))
        }
    }

    /// The longest pause a replay keeps between records (between sessions, say).
    static let replayGapMilliseconds: Int64 = 1_000
}
