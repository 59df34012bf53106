import ControlPlane
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Kafka
import Logging
import NIOCore
import NIOWebSocket
import Relay
import Synchronization
import Trust

/// The publish and watch WebSocket endpoints (protocol in docs/PROTOCOL.md). Every refusal and
/// every limit closes only the offending socket, with its code and reason, and is counted.
struct WebSocketHandlers: Sendable {
    let relay: Relay
    let connections: ConnectionRegistry
    let origins: OriginPolicy

    private var limits: RelayLimits { relay.settings.limits }

    /// Largest text message a publisher may send (its hello).
    static let maxPublisherTextBytes = 16 << 10

    // MARK: Publish

    /// How a publisher's connection ended.
    private enum PublishEnding: Sendable {
        case refused(RelayError)
        /// The socket failed (a protocol error): rethrown so the WebSocket layer closes with its code.
        case socket(any Error)
    }

    /// What the publisher's tasks share: its session once open, and when it last sent something.
    private struct PublishProgress: Sendable {
        var session: PublishSession?
        let connectedAt: Int64
        var lastFrameAt: Int64
    }

    func publish(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: WebSocketRequest) async throws {
        let connection = Connection(request: request, outbound: outbound)
        guard let token = await admit(connection) else { return }
        defer { connections.unregister(token) }
        let topic: TopicName
        do {
            topic = try TopicName(request.topic)
        } catch {
            await connection.close(with: error)
            return
        }
        let queryKey = request.query("key")
        let now = currentMilliseconds()
        let progress = Locked(PublishProgress(connectedAt: now, lastFrameAt: now))
        let relay = self.relay
        let limits = self.limits
        let needsHello = relay.settings.access.publishNeedsKey && queryKey == nil

        let ending: PublishEnding? = await withTaskGroup(of: PublishEnding?.self) { group in
            group.addTask {
                // Tell the publisher what got through, about once a second.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if Task.isCancelled { break }
                    guard let session = progress.withLock({ $0.session }) else { continue }
                    try? await outbound.write(.text(session.statsNotice(kafkaProblem: relay.kafkaProblem)))
                }
                return nil
            }
            group.addTask {
                // The handshake deadline (a key and the stream's start), then the idle timeout.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    let (session, connectedAt, lastFrameAt) = progress.withLock { ($0.session, $0.connectedAt, $0.lastFrameAt) }
                    let now = currentMilliseconds()
                    if session?.isStreaming != true, now - connectedAt > Int64(limits.handshakeSeconds) * 1000 {
                        return .refused(.limit(.handshakeTimeout, "no WebM stream within \(limits.handshakeSeconds) s of connecting (send the EBML header and tracks first)"))
                    }
                    if session?.isStreaming == true, now - lastFrameAt > Int64(limits.idlePublisherSeconds) * 1000 {
                        return .refused(.limit(.idlePublisher, "nothing received for \(limits.idlePublisherSeconds) s; the topic is freed"))
                    }
                }
                return nil
            }
            group.addTask {
                var guardrail = InboundMessageGuard(maxMessageBytes: limits.publishMessageBytes, maxTextBytes: Self.maxPublisherTextBytes,
                                                    limit: .publishMessageSize)
                var key = queryKey
                var session: PublishSession?
                /// Opens the session with the key presented so far, and says so to the publisher.
                func open() async throws(RelayError) -> PublishSession {
                    let opened = try await relay.openPublisher(topic: topic, key: key, remoteAddress: connection.remote, userAgent: connection.userAgent)
                    progress.withLock { $0.session = opened }
                    try? await outbound.write(.text(opened.readyNotice))
                    return opened
                }
                do {
                    if !needsHello { session = try await open() }
                    for try await frame in inbound {
                        progress.withLock { $0.lastFrameAt = currentMilliseconds() }
                        let piece = try guardrail.accept(frame)
                        switch piece {
                        case .partial:
                            continue
                        case .text(let text):
                            guard session == nil else { continue }
                            if let hello = try? JSONDecoder().decode(PublisherHello.self, from: Data(text.utf8)), hello.type == "hello" {
                                key = key ?? hello.key
                            }
                        case .binary:
                            break
                        }
                        if session == nil { session = try await open() }
                        if case .binary(let buffer) = piece, let session {
                            try await relay.publish(buffer.readableBytesView, session: session)
                        }
                    }
                } catch let error as RelayError {
                    return .refused(error)
                } catch {
                    request.logger.debug("publisher socket ended: \(error)")
                    return .socket(error)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let session = progress.withLock({ $0.session }) { await relay.closePublisher(session) }
        switch ending {
        case .refused(let failure): await connection.close(with: failure)
        case .socket(let error): throw error
        case nil: break
        }
    }

    // MARK: Watch

    /// How a viewer's connection ended.
    private enum WatchEnding: Sendable {
        /// The client went away (or a write failed).
        case clientGone
        /// The relay closed it (a kick): the close frame has been sent.
        case closedByRelay
        case refused(RelayError)
        /// Its socket took nothing for the stall timeout.
        case stalled
    }

    func watch(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: WebSocketRequest) async {
        let connection = Connection(request: request, outbound: outbound)
        guard let token = await admit(connection) else { return }
        defer { connections.unregister(token) }
        let viewer: ViewerConnection
        do throws(RelayError) {
            guard let channel = request.channel.current else { return }
            let topic = try TopicName(request.topic)
            let client = String((request.query("client") ?? "").prefix(64))
            let transport = await ChannelViewerTransport.make(channel: channel)
            if let from = request.query("from") ?? request.query("at") {
                // Watching from an earlier time: `from=-30s`, or `at=` an ISO 8601 time or epoch ms.
                guard let milliseconds = RecordingTime.parse(from, nowMilliseconds: currentMilliseconds()) else {
                    throw .nothingToReplay("from=\(from.prefix(40)) is not a time: use -30s, -2m, an ISO 8601 time or ms since the epoch")
                }
                viewer = try await relay.openReplayViewer(topic: topic, from: milliseconds, catchUp: request.query("catchup") == "1",
                                                          token: request.query("token"),
                                                          remoteAddress: connection.remote, remoteHost: connection.host,
                                                          userAgent: connection.userAgent, clientID: client, transport: transport)
            } else {
                viewer = try await relay.openViewer(topic: topic, token: request.query("token"), remoteAddress: connection.remote,
                                                    remoteHost: connection.host, userAgent: connection.userAgent, clientID: client,
                                                    transport: transport)
            }
        } catch {
            await connection.close(with: error)
            return
        }
        connections.update(token) {
            viewer.close()
            await connection.close(with: .shuttingDown)
        }
        defer { relay.closeViewer(viewer) }
        let limits = self.limits
        let ending: WatchEnding = await withTaskGroup(of: WatchEnding.self) { group in
            group.addTask {
                // Viewers send their live delay; reading also tells us when the socket closes.
                var guardrail = InboundMessageGuard(maxMessageBytes: limits.watchMessageBytes, maxTextBytes: limits.watchMessageBytes,
                                                    limit: .watchMessageSize)
                var rate = TokenBucket(capacity: Double(2 * limits.viewerMessagesPerSecond), ratePerSecond: Double(limits.viewerMessagesPerSecond))
                do {
                    for try await frame in inbound {
                        let piece = try guardrail.accept(frame)
                        if case .partial = piece { continue }
                        guard rate.take(1, nowMilliseconds: currentMilliseconds()) else {
                            throw RelayError.limit(.viewerMessageRate, "more than \(limits.viewerMessagesPerSecond) messages a second")
                        }
                        if case .text(let text) = piece, let report = ViewerReport(json: text) {
                            relay.viewerReported(viewer, liveDelayMilliseconds: report.delayMilliseconds, state: report.state,
                                                 glassMilliseconds: report.glassMilliseconds)
                        }
                    }
                } catch let error as RelayError {
                    return .refused(error)
                } catch {}
                return .clientGone
            }
            group.addTask {
                // The relay's fan-out writes the frames (see ChannelViewerTransport); this task
                // waits for the relay to close the viewer: a kick (then it sends the close frame),
                // or a socket that took nothing for the stall timeout.
                await viewer.waitUntilClosed()
                if viewer.isStalled { return .stalled }
                guard let closing = viewer.closeRequest else { return .clientGone }
                request.logger.notice("closing viewer \(viewer.id): \(closing.reason)", metadata: ["code": "\(closing.code)"])
                await connection.close(code: closing.code, reason: closing.reason)
                return .closedByRelay
            }
            let first = await group.next() ?? .clientGone
            switch first {
            case .closedByRelay:
                // The reader must see the client's answer to that close frame: cancelling it
                // would end the inbound stream before the handshake completes, and the socket
                // would linger until the close timeout. Bounded, in case the client never answers.
                group.addTask {
                    try? await Task.sleep(for: .seconds(5))
                    return .clientGone
                }
                _ = await group.next()
            case .refused, .stalled, .clientGone:
                break
            }
            viewer.close()
            group.cancelAll()
            return first
        }
        switch ending {
        case .refused(let error):
            await connection.close(with: error)
        case .stalled:
            Rejections.count(.limit(.stalledViewer, "took nothing for \(limits.stalledViewerSeconds) s"))
            request.logger.notice("disconnecting a stalled viewer \(viewer.id)", metadata: ["remote": "\(connection.remote)"])
            connection.abort()
        case .clientGone, .closedByRelay:
            break
        }
    }

    // MARK: Admission

    /// Checks the page's origin and the remote address's connection count; registers the
    /// connection. Closes it (4003, 4429) and returns nil when refused.
    private func admit(_ connection: Connection) async -> UInt64? {
        let origin = connection.request.headers[.origin]
        guard origins.allows(origin: origin, host: connection.request.authority) else {
            let shown = String((origin ?? "").prefix(60))
            await connection.close(with: .forbidden(.originRefused, "pages from \(shown) may not use this relay (see --allowed-origin)"))
            return nil
        }
        guard let token = connections.register(host: connection.host, { await connection.close(with: .shuttingDown) }) else {
            await connection.close(with: .limit(.connectionsPerAddress, "\(connections.maxPerAddress) connections from your address already (the limit)"))
            return nil
        }
        return token
    }

}

/// One WebSocket as the handlers see it: who is at the other end, and how to close it so that a
/// socket that does not take its close frame is cut off instead of holding the relay.
struct Connection: Sendable {
    let request: WebSocketRequest
    let outbound: WebSocketOutboundWriter
    let remote: String
    let host: String
    let userAgent: String

    /// How long a close may take before the socket is cut off.
    static let closeDeadline: Duration = .seconds(2)

    init(request: WebSocketRequest, outbound: WebSocketOutboundWriter) {
        self.request = request
        self.outbound = outbound
        remote = request.remoteDescription
        host = request.remoteHost
        userAgent = String((request.headers[.userAgent] ?? "").prefix(200))
    }

    /// Sends the error as a JSON message, then closes with its code and reason; counts it in
    /// `kvb_rejected_total` (a relay shutting down is not a rejection).
    func close(with error: RelayError) async {
        if error != .shuttingDown {
            Rejections.count(error)
            request.logger.notice("closing WebSocket: \(error)", metadata: ["code": "\(error.closeCode)", "remote": "\(remote)"])
        }
        await close(code: error.closeCode, reason: error.description, notice: error != .shuttingDown)
    }

    /// Sends `{"type":"error"}` (unless `notice` is false) and a close frame with `code` and
    /// `reason`, within ``closeDeadline``; past it the connection is cut off.
    func close(code: UInt16, reason: String, notice: Bool = true) async {
        let outbound = self.outbound
        // A close reason must fit in a control frame (123 bytes of UTF-8).
        let cut = String(reason.utf8.prefix(120)) ?? ""
        let shortReason = cut.isEmpty ? "closed" : cut
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                if notice { try? await outbound.write(.text(ViewerNotice.error(reason))) }
                try? await outbound.close(.init(codeNumber: Int(code)), reason: shortReason)
                return true
            }
            group.addTask {
                try? await Task.sleep(for: Self.closeDeadline)
                return false
            }
            let first = await group.next() ?? false
            if !first { abort() }
            group.cancelAll()
            return first
        }
        if !finished { request.logger.debug("close frame not taken in time: connection cut", metadata: ["remote": "\(remote)"]) }
    }

    /// Cuts the TCP connection at once (pending writes fail).
    func abort() {
        request.channel.close()
    }
}
