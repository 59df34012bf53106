import ControlPlane
import Foundation
import Hummingbird
import HummingbirdCore
import Kafka
import Logging
import NIOCore
import Relay

/// `GET /api/recordings`, `GET /api/topics/{topic}/sessions` and
/// `GET /api/topics/{topic}/recording.webm?session=S`: what Kafka still holds, as lists of
/// sessions and as files (docs/PROTOCOL.md).
enum RecordingRoutes {
    /// The sessions document.
    struct Sessions: Encodable {
        var topic: String
        /// Oldest first.
        var sessions: [RecordedSession]
        /// The most Kafka keeps of a stream, in bytes, as far as this relay knows (the embedded
        /// cluster's fixed size, or what it asks of the topics it creates); nil: no byte limit.
        var retentionBytes: Int64?
        /// The same in words, with where the figure comes from.
        var retention: String
    }

    /// `Kvb-Time-Search`: how the times asked for were found in Kafka (offsets-for-times or a
    /// search over the records' headers), for operators and tests.
    static let timeSearchHeader = HTTPFields.Element.Name("Kvb-Time-Search")

    /// Sessions `GET /api/recordings` gives when no `limit` is asked for.
    static let defaultListLimit = 100

    static func add(to router: Router<RelayRequestContext>, relay: Relay, embedded: Bool, logger: Logger) {
        let topics = relay.settings.topics
        let retentionBytes: Int64? = embedded ? EmbeddedKafkaCluster.retainedBytesPerPartition
            : topics.retentionBytes > 0 ? topics.retentionBytes : nil
        let limits = [
            topics.retentionBytes > 0 ? "up to \(topics.retentionBytes >> 20) MiB" : nil,
            topics.retentionMilliseconds > 0 ? "up to \(topics.retentionMilliseconds / 3_600_000) h" : nil,
        ].compactMap { $0 }
        let retention = embedded ? "the embedded Kafka cluster keeps the newest 5 MiB of each stream"
            : limits.isEmpty ? "topics this relay creates keep everything"
            : "topics this relay creates keep " + limits.joined(separator: " and ") + " of each stream"
        router.get("/api/recordings") { request, _ -> Response in
            let limit: Int
            switch request.uri.queryParameters["limit"].map(String.init) {
            case nil:
                limit = defaultListLimit
            case let text?:
                guard let number = Int(text), (1...RecordingCatalog.maxLimit).contains(number) else {
                    Rejections.count(reason: "bad_limit")
                    throw HTTPError(.badRequest, message: "limit=\(text.prefix(20)) is not a number from 1 to \(RecordingCatalog.maxLimit)")
                }
                limit = number
            }
            do {
                return try Response.json(try await relay.recordingList(limit: limit))
            } catch {
                throw refusal(error)
            }
        }

        router.get("/api/topics/:topic/sessions") { request, context -> Response in
            do {
                let topic = try TopicName(context.parameters.get("topic") ?? "")
                let sessions = try await relay.recordedSessions(topic: topic, token: request.uri.queryParameters["token"].map(String.init))
                return try Response.json(Sessions(topic: topic.value, sessions: sessions, retentionBytes: retentionBytes,
                                                  retention: retention))
            } catch {
                throw refusal(error)
            }
        }

        router.get("/api/topics/:topic/recording.webm") { request, context -> Response in
            let download: RecordingDownload
            do {
                let topic = try TopicName(context.parameters.get("topic") ?? "")
                let query = request.uri.queryParameters
                let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                func time(_ name: String) throws -> Int64? {
                    guard let text = query[Substring(name)].map(String.init) else { return nil }
                    guard let milliseconds = RecordingTime.parse(text, nowMilliseconds: now) else {
                        Rejections.count(reason: "bad_recording_time")
                        throw HTTPError(.badRequest, message: "\(name)=\(text.prefix(40)) is not a time: use ISO 8601 (2026-12-06T02:30:00Z), milliseconds since the epoch, or -30s / -2m / -1h")
                    }
                    return milliseconds
                }
                let from = try time("from")
                let to = try time("to")
                if let from, let to, to <= from {
                    Rejections.count(reason: "bad_recording_time")
                    throw HTTPError(.badRequest, message: "to must be after from")
                }
                download = try await relay.recording(topic: topic, session: query["session"].map(String.init), from: from, to: to,
                                                     token: query["token"].map(String.init))
            } catch let error as HTTPError {
                throw error
            } catch {
                throw refusal(error)
            }
            // One range of the file (players seek with these), or all of it.
            let total = download.contentLength
            var headers: HTTPFields = [
                .contentType: "video/webm",
                .contentDisposition: "attachment; filename=\"\(download.fileName)\"",
                .cacheControl: "no-store",
                .acceptRanges: "bytes",
            ]
            // How the times asked for were found in Kafka (for operators, and the tests).
            if let method = download.timeSearch, let name = timeSearchHeader { headers[name] = method.rawValue }
            var status = HTTPResponse.Status.ok
            switch ByteRange(header: request.headers[.range], length: total) {
            case .whole:
                break
            case .partial(let range):
                download.limit(to: range)
                status = .partialContent
                headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(total)"
            case .unsatisfiable:
                download.cancel()
                Rejections.count(reason: "range_not_satisfiable")
                headers[.contentRange] = "bytes */\(total)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            let range = download.range
            logger.debug("sending \(download.topic) session \(download.session.id) bytes \(range.lowerBound)-\(range.upperBound)/\(total)")
            return Response(
                status: status,
                headers: headers,
                body: ResponseBody(contentLength: Int(range.upperBound - range.lowerBound + 1)) { writer in
                    do {
                        try await download.stream { buffer in try await writer.write(buffer) }
                        try await writer.finish(nil)
                    } catch {
                        logger.warning("download of \(download.topic) session \(download.session.id) stopped: \(error)")
                        throw error
                    }
                }
            )
        }
    }

    /// The HTTP answer for a request that cannot be served, counted in `kvb_rejected_total`.
    static func refusal(_ error: any Error) -> HTTPError {
        switch error {
        case let error as RelayError:
            Rejections.count(error)
            let status: HTTPResponse.Status = switch error {
            case .invalidTopic: .badRequest
            case .forbidden: .forbidden
            case .limit, .kafkaUnavailable, .shuttingDown: .serviceUnavailable
            default: .badRequest
            }
            var headers = HTTPFields()
            if status == .serviceUnavailable { headers[.retryAfter] = "5" }
            return HTTPError(status, headers: headers, message: error.description)
        case let error as RecordingError:
            switch error {
            case .noSuchSession, .noKeyframe:
                Rejections.count(reason: "no_such_recording")
                return HTTPError(.notFound, message: error.description)
            case .unreadable:
                Rejections.count(reason: "unreadable_recording")
                return HTTPError(.internalServerError, message: error.description)
            }
        default:
            return HTTPError(.internalServerError, message: "\(error)")
        }
    }
}
