import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Request context of the relay's router: WebSocket upgrades, the peer's address, and the
/// connection's channel (so a stalled socket can be cut off).
struct RelayRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let remoteAddress: SocketAddress?
    let channel: WeakChannel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
        channel = WeakChannel(source.channel)
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

/// The connection's channel, held weakly: the channel owns the request context for the
/// connection's lifetime, and a strong reference back would keep both alive forever.
final class WeakChannel: @unchecked Sendable {
    private weak var channel: (any Channel)?

    init(_ channel: any Channel) {
        self.channel = channel
    }

    /// Closes the connection at once, if it is still open.
    func close() {
        channel?.close(promise: nil)
    }
}
