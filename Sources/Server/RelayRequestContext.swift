import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Request context of the relay's HTTP router.
struct RelayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// The opening request of a WebSocket, as the handlers need it: which endpoint and topic, the
/// query, the headers, and the connection.
///
/// WebSockets are routed here straight from the upgrade (not through a router context, which
/// hummingbird-websocket keeps in a reference cycle: about 1 KiB per connection never freed).
struct WebSocketRequest: Sendable {
    enum Endpoint: Sendable { case publish, watch }

    let endpoint: Endpoint
    /// The `{topic}` path segment, percent-decoded (so errors quote what the user typed).
    let topic: String
    let headers: HTTPFields
    /// The request's authority (the `Host` header).
    let authority: String?
    let remoteAddress: SocketAddress?
    let channel: WeakChannel
    let logger: Logger
    private let uri: URI

    /// The request for `/ws/publish/{topic}` or `/ws/watch/{topic}`; nil for any other path.
    init?(head: HTTPRequest, channel: any Channel, logger: Logger) {
        let uri = URI(head.path ?? "/")
        let path = uri.path
        let raw: Substring
        if path.hasPrefix("/ws/publish/") {
            endpoint = .publish
            raw = path.dropFirst("/ws/publish/".count)
        } else if path.hasPrefix("/ws/watch/") {
            endpoint = .watch
            raw = path.dropFirst("/ws/watch/".count)
        } else {
            return nil
        }
        topic = String(raw).removingPercentEncoding ?? String(raw)
        self.uri = uri
        headers = head.headerFields
        authority = head.authority
        remoteAddress = channel.remoteAddress
        self.channel = WeakChannel(channel)
        self.logger = logger
    }

    /// A query parameter (percent-decoded by the URI parser).
    func query(_ name: String) -> String? {
        uri.queryParameters[Substring(name)].map(String.init)
    }

    /// `IP:PORT` of the peer, or `unknown`.
    var remoteDescription: String {
        guard let address = remoteAddress else { return "unknown" }
        if let ip = address.ipAddress, let port = address.port { return "\(ip):\(port)" }
        return "\(address)"
    }

    /// The peer's IP address, or `unknown`.
    var remoteHost: String {
        remoteAddress?.ipAddress ?? "unknown"
    }
}

/// The connection's channel, held weakly: the channel owns what refers to it for the
/// connection's lifetime, and a strong reference back would keep both alive forever.
final class WeakChannel: @unchecked Sendable {
    private weak var channel: (any Channel)?

    init(_ channel: any Channel) {
        self.channel = channel
    }

    /// The channel, while it exists.
    var current: (any Channel)? { channel }

    /// Closes the connection at once, if it is still open.
    func close() {
        channel?.close(promise: nil)
    }
}
