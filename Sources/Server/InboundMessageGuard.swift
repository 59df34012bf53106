import NIOCore
import Relay
import HummingbirdWebSocket

/// Turns WebSocket frames into what a handler acts on, enforcing a message size limit: binary
/// data is handed on frame by frame (a publisher's chunk is a byte stream, never held whole),
/// text messages are assembled up to `maxTextBytes`.
struct InboundMessageGuard {
    enum Piece {
        case binary(ByteBuffer)
        case text(String)
        /// Part of a text message; more frames follow.
        case partial
    }

    let maxMessageBytes: Int
    let maxTextBytes: Int
    let limit: Limit
    private var messageBytes = 0
    private var assemblingText: ByteBuffer?

    init(maxMessageBytes: Int, maxTextBytes: Int, limit: Limit) {
        self.maxMessageBytes = maxMessageBytes
        self.maxTextBytes = min(maxTextBytes, maxMessageBytes)
        self.limit = limit
    }

    mutating func accept(_ frame: WebSocketDataFrame) throws(RelayError) -> Piece {
        switch frame.opcode {
        case .binary:
            messageBytes = frame.data.readableBytes
            assemblingText = nil
        case .text:
            messageBytes = frame.data.readableBytes
            assemblingText = ByteBuffer()
        case .continuation:
            messageBytes += frame.data.readableBytes
        }
        let isText = assemblingText != nil
        let ceiling = isText ? maxTextBytes : maxMessageBytes
        guard messageBytes <= ceiling else {
            throw .limit(limit, "message of more than \(ceiling) bytes (\(isText ? "text" : "binary")); this relay's limit is \(ceiling)")
        }
        if var text = assemblingText {
            var data = frame.data
            text.writeBuffer(&data)
            if frame.fin {
                assemblingText = nil
                return .text(String(buffer: text))
            }
            assemblingText = text
            return .partial
        }
        return .binary(frame.data)
    }
}

/// A publisher's optional first text message: `{"type":"hello","mimeType":"…","key":"…"}`.
struct PublisherHello: Decodable {
    var type: String
    var mimeType: String?
    /// The publish key, as an alternative to `?key=` in the URL (which proxies may log).
    var key: String?
}
