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
    public func openReplayViewer(topic: TopicName, from milliseconds: Int64, catchUp: Bool = false, token: String? = nil, remoteAddress: String,
                                 remoteHost: String = "", userAgent: String = "", clientID: String = "",
                                 transport: any ViewerTransport) async throws(RelayError) -> ViewerConnection {
        let now = currentMilliseconds()
        let tokenExpiry = try settings.access.checkWatch(topic: topic, token: token, nowSeconds: now / 1000)
        let limit = settings.limits.replayViewers
        let viewer = try openViewerLocked(topic: topic, now: now, remoteAddress: remoteAddress, remoteHost: remoteHost,
                                          userAgent: userAgent, clientID: clientID, tokenExpiry: tokenExpiry, watchesThePast: true,
                                          transport: transport)
        // Find where to start before taking a place: a search reads a few records.
        let start: (offset: Int64, session: String)
        do {
            let reader = try await ArchiveReader.open(kafka: kafka, topic: topic.value, logger: logger)
            defer { reader.close() }
            guard let marks = try await reader.watermarks(), let found = try await reader.start(at: milliseconds, marks: marks) else {
                throw RelayError.nothingToReplay("topic \(topic) holds no keyframe at or before that time")
            }
            start = (found.offset, found.session)
            logger.info("replaying \(topic) for \(viewer.id) from offset \(found.offset)",
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
                await Self.replay(topic: topic, from: start.offset, to: viewer, speed: catchUp ? Self.catchUpSpeed : 1,
                                  kafka: kafka, logger: logger)
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
    /// long after the first as it was recorded after it, divided by `speed` (a pause between
    /// sessions counts as ``replayGapMilliseconds`` at most). A viewer catching up (`speed` > 1)
    /// is told once it has everything Kafka holds. Ends when the viewer is closed.
    private static func replay(topic name: TopicName, from offset: Int64, to viewer: ViewerConnection, speed: Double,
                               kafka: KafkaConfiguration, logger: Logger) async {
        let topic = name.value
        var toldCaughtUp = false
        var endedLast = false
        var cache = KeyframeCache(maxBytes: 16 << 20)
        // Where the recording's clock and the wall clock line up, moved on across pauses.
        var origin: (recorded: Int64, wall: Int64)?
        var lastRecorded: Int64?
        do {
            let reader = try await ArchiveReader.open(kafka: kafka, topic: topic, logger: logger)
            defer { reader.close() }
            try await reader.read(from: offset, until: Int64.max, stallMilliseconds: nil, atEnd: {
                // Everything Kafka holds has been read (and all before it sent): caught up when what
                // was sent last is recent, or when the stream ended (nothing more to catch up to).
                guard speed > 1, !toldCaughtUp, let last = lastRecorded,
                      endedLast || currentMilliseconds() - last < Self.liveEdgeMilliseconds else { return }
                toldCaughtUp = true
                viewer.send(notice: ViewerNotice.caughtUp(topic: name))
            }) { message in
                guard !viewer.isClosed else { return false }
                guard let fragment = StreamFragment(message) else { return true }
                endedLast = fragment.isEnd
                let recorded = fragment.ingestMilliseconds
                if let last = lastRecorded, let current = origin, recorded - last > replayGapMilliseconds || recorded < last {
                    origin = (recorded, current.wall + (last - current.recorded) + replayGapMilliseconds)
                }
                lastRecorded = recorded
                let anchor = origin ?? (recorded, currentMilliseconds())
                origin = anchor
                let due = anchor.wall + Int64(Double(recorded - anchor.recorded) / speed)
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

    /// How much faster than recorded a viewer that chose to catch up is sent the stream (its
    /// page plays faster, up to its latency mode's highest rate, and skips ahead where it must).
    static let catchUpSpeed = 1.5
    /// A replay whose latest fragment sent is this recent is at the live edge.
    static let liveEdgeMilliseconds: Int64 = 2_000

    /// The longest pause a replay keeps between records (between sessions, say).
    static let replayGapMilliseconds: Int64 = 1_000
}
