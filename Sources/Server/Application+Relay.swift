import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Kafka
import Logging
import NIOCore
import Prometheus
import Relay
import Trust

/// Builds the relay's HTTP application: pages, API, health, and the two WebSocket endpoints.
func makeApplication(
    relay: Relay, connections: ConnectionRegistry, origins: OriginPolicy, kafka: KafkaConfiguration, embedded: Bool,
    host: String, port: Int, staticDir: String, prometheus: PrometheusCollectorRegistry, logger: Logger,
    onRunning: @escaping @Sendable (_ address: String) async -> Void
) -> some ApplicationProtocol {
    let router = Router(context: RelayRequestContext.self)
    router.add(middleware: FileMiddleware(staticDir, urlBasePath: "/static", searchForIndexHtml: false, logger: logger))
    router.add(middleware: FileMiddleware(staticDir, searchForIndexHtml: false, logger: logger))

    router.get("/healthz") { _, _ in
        let problem = relay.kafkaProblem
        let health = Health(
            status: problem == nil ? "ok" : "kafka_unreachable", relay: relay.settings.relayID,
            kafka: embedded ? "embedded" : "external", bootstrap: kafka.bootstrapServers, librdkafka: Librdkafka.version,
            reason: problem, kafkaError: relay.recentKafkaError()
        )
        return try Response.json(health, status: problem == nil ? .ok : .serviceUnavailable)
    }
    router.get("/api/topics") { _, _ in
        try Response.json(["topics": await relay.topicSummaries()])
    }
    RecordingRoutes.add(to: router, relay: relay, embedded: embedded, logger: logger)
    router.get("/metrics") { _, _ in
        // Counters and latency histograms are live; the lag and viewer gauges are set with each
        // status document (every second).
        Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: prometheus.emitToBuffer()))
        )
    }
    router.get("/") { _, _ in
        let topics = await relay.topicSummaries()
        return Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: IndexPage.render(topics: topics, relayID: relay.settings.relayID,
                                                                                 listsRecordings: relay.settings.access.watchTokens == nil)))
        )
    }

    // The WebSocket endpoints answer a plain HTTP request with 400 and a hint. (A WebSocket with
    // a bad topic is accepted and then closed with 4400 and the reason, which a browser can read;
    // it cannot read an HTTP refusal of the handshake.)
    for path in ["/ws/publish/:topic", "/ws/watch/:topic"] {
        router.get(RouterPath(path)) { _, _ -> Response in
            throw HTTPError(.badRequest, message: "This is a WebSocket endpoint (see docs/PROTOCOL.md).")
        }
    }
    let handlers = WebSocketHandlers(relay: relay, connections: connections, origins: origins)

    let limits = relay.settings.limits
    let configuration = HTTP1WebSocketUpgradeChannel.Configuration(
        http1: .init(idleTimeout: .seconds(Int64(max(limits.handshakeSeconds, 30)))),
        ws: .init(
            maxFrameSize: max(limits.publishMessageBytes, limits.watchMessageBytes),
            autoPing: .enabled(timePeriod: .seconds(20)),
            closeTimeout: .seconds(5)
        )
    )
    let handshakeDeadline = TimeAmount.seconds(Int64(limits.handshakeSeconds))
    // Every connection must send its request's headers within the handshake time.
    let server = HTTPServerBuilder { responder in
        GuardedChildChannel(
            base: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: configuration) { head, channel, logger in
                guard head.headerFields[.upgrade]?.lowercased() == "websocket",
                      let request = WebSocketRequest(head: head, channel: channel, logger: logger)
                else { return .dontUpgrade }
                return .upgrade([:]) { inbound, outbound, _ in
                    switch request.endpoint {
                    case .publish: try await handlers.publish(inbound: inbound, outbound: outbound, request: request)
                    case .watch: await handlers.watch(inbound: inbound, outbound: outbound, request: request)
                    }
                }
            },
            deadline: handshakeDeadline, sendBufferBytes: limits.socketSendBufferBytes,
            onTimeout: { Rejections.count(.limit(.handshakeTimeout, "request headers not received in time")) }
        )
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(host, port: port), serverName: "kvb"),
        onServerRunning: { channel in
            let address = channel.localAddress
            let shownHost = address?.ipAddress ?? host
            let shownPort = address?.port ?? port
            print("kvb relay \(relay.settings.relayID) listening on http://\(shownHost):\(shownPort)")
            print("  broadcast: http://\(shownHost):\(shownPort)/broadcast.html?topic=demo")
            print("  watch:     http://\(shownHost):\(shownPort)/watch.html?topic=demo")
            print("  original:  http://\(shownHost):\(shownPort)/static/index.html")
            fflush(nil)
            await onRunning("http://\(shownHost):\(shownPort)")
        },
        logger: logger
    )
}

/// `GET /healthz`: 200 while Kafka answers, 503 with the reason while it does not.
struct Health: Encodable {
    var status: String
    var relay: String
    var kafka: String
    var bootstrap: String
    /// The librdkafka version this relay loaded.
    var librdkafka: String
    /// Why Kafka is unreachable (503 only).
    var reason: String?
    /// The producer's latest Kafka error within the last 30 s, if any.
    var kafkaError: String?
}

extension Response {
    /// A JSON response from any Encodable.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
