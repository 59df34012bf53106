import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Request context of the relay's router: WebSocket upgrades plus the peer's address.
struct RelayRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
    }
}

extension RemoteAddressRequestContext {
    /// `IP:PORT` of the peer, or `unknown`.
    var remoteDescription: String {
        guard let address = remoteAddress else { return "unknown" }
        if let ip = address.ipAddress, let port = address.port { return "\(ip):\(port)" }
        return "\(address)"
    }
}
