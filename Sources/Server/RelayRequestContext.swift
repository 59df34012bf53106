import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Request context of the relay's router: WebSocket upgrades, the peer's address, and the
/// connection's channel (so a stalled socket can be cut off).
struct RelayRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let remoteAddress: SocketAddress?
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

extension RemoteAddressRequestContext {
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
