import Foundation
import Hummingbird
import HummingbirdWebSocket
import Kafka
import Logging
import Prometheus
import Relay

/// Builds the relay's HTTP application: pages, API, health, and the two WebSocket endpoints.
func makeApplication(
    relay: Relay, connections: ConnectionRegistry, kafka: KafkaConfiguration, embedded: Bool,
    host: String, port: Int, staticDir: String, prometheus: PrometheusCollectorRegistry, logger: Logger,
    onRunning: @escaping @Sendable (_ address: String) async -> Void
) -> some ApplicationProtocol {
    let router = Router(context: RelayRequestContext.self)
    router.add(middleware: FileMiddleware(staticDir, urlBasePath: "/static", searchForIndexHtml: false, logger: logger))
    router.add(middleware: FileMiddleware(staticDir, searchForIndexHtml: false, logger: logger))

    router.get("/healthz") { _, _ in
        let error = relay.recentKafkaError().map { #","kafkaError":"\#(jsonEscaped($0))""# } ?? ""
        let body = #"{"status":"ok","relay":"\#(jsonEscaped(relay.settings.relayID))","kafka":"\#(embedded ? "embedded" : "external")","bootstrap":"\#(jsonEscaped(kafka.bootstrapServers))"\#(error)}"#
        return Response.json(body)
    }
    router.get("/api/topics") { _, _ in
        let topics = await relay.topicSummaries()
        let data = try JSONEncoder().encode(["topics": topics])
        return Response.json(String(decoding: data, as: UTF8.self))
    }
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
            body: .init(byteBuffer: ByteBuffer(string: IndexPage.render(topics: topics, relayID: relay.settings.relayID)))
        )
    }

    let handlers = WebSocketHandlers(relay: relay, connections: connections)
    router.ws("/ws/publish/:topic", shouldUpgrade: requireUpgrade) { inbound, outbound, context in
        try await handlers.publish(inbound: inbound, outbound: outbound, context: context)
    }
    router.ws("/ws/watch/:topic", shouldUpgrade: requireUpgrade) { inbound, outbound, context in
        await handlers.watch(inbound: inbound, outbound: outbound, context: context)
    }

    return Application(
        router: router,
        server: .http1WebSocketUpgrade(
            webSocketRouter: router,
            configuration: .init(ws: .init(maxFrameSize: WebSocketHandlers.maxFrameBytes, autoPing: .enabled(timePeriod: .seconds(20))))
        ),
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

/// The WebSocket endpoints answer a plain HTTP request with 400 and a hint. (A WebSocket with a bad
/// topic is accepted and then closed with 4400 and the reason, which a browser can read; it
/// cannot read an HTTP refusal of the handshake.)
@Sendable func requireUpgrade(_ request: Request, _ context: RelayRequestContext) async throws -> RouterShouldUpgrade {
    guard request.headers[.upgrade]?.lowercased() == "websocket" else {
        throw HTTPError(.badRequest, message: "This is a WebSocket endpoint (see docs/PROTOCOL.md).")
    }
    return .upgrade([:])
}

extension Response {
    static func json(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
