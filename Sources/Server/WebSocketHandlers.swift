import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Relay
import ControlPlane

/// The publish and watch WebSocket endpoints (protocol in docs/PROTOCOL.md).
struct WebSocketHandlers: Sendable {
    /// Largest WebSocket frame accepted or sent.
    static let maxFrameBytes = 8 << 20
    let relay: Relay
    let connections: ConnectionRegistry

    typealias Context = WebSocketRouterContext<RelayRequestContext>

    // MARK: Publish

    /// Rethrows what the WebSocket layer raised (e.g. a message over the size limit), so that it
    /// closes the socket with the matching code (1009) rather than a plain 1000.
    func publish(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: Context) async throws {
        let remote = context.requestContext.remoteDescription
        let session: PublishSession
        do {
            let topic = try TopicName(topicParameter(context))
            session = try await relay.openPublisher(topic: topic, remoteAddress: remote, userAgent: userAgent(context))
        } catch let error as RelayError {
            await close(outbound, with: error, logger: context.logger)
            return
        } catch {
            await close(outbound, with: .brokenStream("\(error)"), logger: context.logger)
            return
        }
        let token = connections.register { await close(outbound, with: .shuttingDown, logger: context.logger) }
        defer { connections.unregister(token) }
        try? await outbound.write(.text(session.readyNotice))

        enum Ending: Sendable { case relay(RelayError), socket(any Error) }
        let ending: Ending? = await withTaskGroup(of: Ending?.self) { group in
            group.addTask {
                // Tell the publisher what got through, about once a second.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if Task.isCancelled { break }
                    try? await outbound.write(.text(session.statsNotice))
                }
                return nil
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: Self.maxFrameBytes) {
                        guard case .binary(let buffer) = message else { continue }
                        try await relay.publish(buffer.readableBytesView, session: session)
                    }
                } catch let error as RelayError {
                    return .relay(error)
                } catch {
                    context.logger.debug("publisher socket ended: \(error)")
                    return .socket(error)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        await relay.closePublisher(session)
        switch ending {
        case .relay(let failure): await close(outbound, with: failure, logger: context.logger)
        case .socket(let error): throw error
        case nil: break
        }
    }

    // MARK: Watch

    func watch(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: Context) async {
        let remote = context.requestContext.remoteDescription
        let viewer: ViewerConnection
        do {
            let topic = try TopicName(topicParameter(context))
            let client = String((context.request.uri.queryParameters["client"].map(String.init) ?? "").prefix(64))
            viewer = try await relay.openViewer(topic: topic, remoteAddress: remote, userAgent: userAgent(context), clientID: client)
        } catch let error as RelayError {
            await close(outbound, with: error, logger: context.logger)
            return
        } catch {
            await close(outbound, with: .kafkaUnavailable("\(error)"), logger: context.logger)
            return
        }
        let token = connections.register {
            viewer.close()
            await close(outbound, with: .shuttingDown, logger: context.logger)
        }
        defer {
            relay.closeViewer(viewer)
            connections.unregister(token)
        }
        let metrics = relay.metrics
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                // Viewers send their live delay; reading also tells us when the socket closes.
                do {
                    for try await message in inbound.messages(maxSize: 64 << 10) {
                        guard case .text(let text) = message, let report = ViewerReport(json: text) else { continue }
                        viewer.report(liveDelayMilliseconds: report.delayMilliseconds, state: report.state)
                    }
                } catch {}
                return false
            }
            group.addTask {
                while let delivery = await viewer.next() {
                    do {
                        switch delivery.frame {
                        case .binary(let bytes):
                            try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                            let topic = viewer.topic.value
                            metrics.recordOut(topic: topic, bytes: bytes.count)
                            if let ingest = delivery.ingestMilliseconds {
                                metrics.recordLatency(topic: topic, stage: .written, milliseconds: currentMilliseconds() - ingest)
                            }
                            viewer.didWrite(bytes: bytes.count)
                        case .text(let text):
                            try await outbound.write(.text(text))
                        }
                    } catch {
                        return false
                    }
                }
                // Closed by the relay (a kick): send the close frame from here.
                guard let request = viewer.closeRequest else { return false }
                context.logger.notice("closing viewer \(viewer.id): \(request.reason)", metadata: ["code": "\(request.code)"])
                try? await outbound.write(.text(ViewerNotice.error(request.reason)))
                try? await outbound.close(.init(codeNumber: Int(request.code)), reason: request.reason)
                return true
            }
            if await group.next() == true {
                // The reader must see the client's answer to that close frame: cancelling it
                // would end the inbound stream before the handshake completes, and the socket
                // would linger until the close timeout. Bounded, in case the client never answers.
                group.addTask {
                    try? await Task.sleep(for: .seconds(5))
                    return false
                }
                _ = await group.next()
            }
            group.cancelAll()
        }
    }

    /// The `{topic}` path segment, percent-decoded (so errors quote what the user typed).
    private func topicParameter(_ context: Context) -> String {
        let raw = context.requestContext.parameters.get("topic") ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    private func userAgent(_ context: Context) -> String {
        String((context.request.headers[.userAgent] ?? "").prefix(200))
    }

    // MARK: Errors

    /// Sends the error as a JSON message, then closes with its code and reason.
    private func close(_ outbound: WebSocketOutboundWriter, with error: RelayError, logger: Logger) async {
        if error != .shuttingDown {
            logger.notice("closing WebSocket: \(error)", metadata: ["code": "\(error.closeCode)"])
            try? await outbound.write(.text(ViewerNotice.error(error.description)))
        }
        // A close reason must fit in a control frame (123 bytes of UTF-8).
        var reason = String(error.description.utf8.prefix(120)) ?? error.label
        if reason.isEmpty { reason = error.label }
        try? await outbound.close(.init(codeNumber: Int(error.closeCode)), reason: reason)
    }
}
