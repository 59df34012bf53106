import Kafka
import Foundation
import WebM

/// One publisher connection: its WebM segmenter, its sequence numbers and its counters.
/// A reconnect is a new session with a new id.
public final class PublishSession: Sendable {
    public let id: String
    public let number: UInt32
    public let topic: TopicName
    public let remoteAddress: String
    public let userAgent: String
    public let relayID: String
    public let startedMilliseconds: Int64

    public struct Counters: Sendable, Equatable {
        public var bytes = 0
        public var fragments = 0
        public var keyframes = 0
        public var acked = 0
        public var failed = 0
        public var lastDeliveryError: String?
    }

    private struct Inner: Sendable {
        var segmenter: WebMSegmenter
        var initSegment: [UInt8]?
        var nextSequence: UInt64 = 0
        var counters = Counters()
        /// Ingest time of each fragment produced and not yet acknowledged (low 32 bits of seq).
        var unacknowledged: [UInt32: Int64] = [:]
    }

    private let inner: Locked<Inner>

    init(number: UInt32, topic: TopicName, remoteAddress: String, userAgent: String, relayID: String, maxElementBytes: Int) {
        self.id = UUID().uuidString.lowercased()
        self.number = number
        self.topic = topic
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
        self.relayID = relayID
        self.startedMilliseconds = currentMilliseconds()
        self.inner = Locked(Inner(segmenter: WebMSegmenter(maxElementSize: maxElementBytes)))
    }

    public var counters: Counters { inner.withLock { $0.counters } }

    /// Parses a chunk and returns the fragments it completed, ready to produce.
    public func receive(_ chunk: some Collection<UInt8>, nowMilliseconds: Int64) throws(RelayError) -> [StreamFragment] {
        try inner.withLock { (inner) throws(RelayError) -> [StreamFragment] in
            inner.counters.bytes += chunk.count
            let outputs: [WebMSegmenterOutput]
            do {
                outputs = try inner.segmenter.append(chunk)
            } catch let error as WebMError {
                switch error.kind {
                case .notWebM, .unsupportedDocType: throw .unsupportedMedia(error.description)
                default: throw .brokenStream(error.description)
                }
            } catch {
                throw .brokenStream("\(error)")
            }
            var fragments: [StreamFragment] = []
            for output in outputs {
                switch output {
                case .initSegment(let segment):
                    inner.initSegment = segment.bytes
                case .fragment(let fragment):
                    inner.unacknowledged[UInt32(truncatingIfNeeded: inner.nextSequence)] = nowMilliseconds
                    fragments.append(StreamFragment(
                        session: id, sequence: inner.nextSequence, ingestMilliseconds: nowMilliseconds,
                        isKeyframe: fragment.isKeyframe, initSegment: fragment.isKeyframe ? inner.initSegment : nil,
                        relay: relayID, bytes: fragment.bytes
                    ))
                    inner.nextSequence += 1
                    inner.counters.fragments += 1
                    if fragment.isKeyframe { inner.counters.keyframes += 1 }
                }
            }
            return fragments
        }
    }

    /// The end-of-session marker, produced when the publisher goes away.
    func endMarker(nowMilliseconds: Int64) -> StreamFragment {
        inner.withLock { inner in
            defer { inner.nextSequence += 1 }
            return StreamFragment(session: id, sequence: inner.nextSequence, ingestMilliseconds: nowMilliseconds,
                                  isKeyframe: false, initSegment: nil, relay: relayID, bytes: [], isEnd: true)
        }
    }

    /// Kafka reported the fragment with this (truncated) sequence number; returns its ingest time.
    func delivered(sequence: UInt32, error: String?) -> Int64? {
        inner.withLock { inner in
            let ingest = inner.unacknowledged.removeValue(forKey: sequence)
            if let error {
                inner.counters.failed += 1
                inner.counters.lastDeliveryError = error
            } else {
                inner.counters.acked += 1
            }
            return ingest
        }
    }

    /// The `stats` message for the publisher.
    public var statsNotice: String {
        let c = counters
        let error = c.lastDeliveryError.map { #","kafkaError":"\#(jsonEscaped($0))""# } ?? ""
        return #"{"type":"stats","bytes":\#(c.bytes),"fragments":\#(c.fragments),"keyframes":\#(c.keyframes),"acked":\#(c.acked),"failed":\#(c.failed)\#(error)}"#
    }

    public var readyNotice: String {
        #"{"type":"ready","topic":"\#(topic)","session":"\#(id)","relay":"\#(jsonEscaped(relayID))"}"#
    }
}
