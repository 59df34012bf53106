import NIOCore
import NIOWebSocket
import Relay

/// A viewer's WebSocket as the relay's fan-out writes it: frames go straight onto the channel,
/// on its event loop, and are flushed once per batch. (The WebSocket handler's own writer is
/// used only to close: both write through the same pipeline, in the order they reach the loop.)
struct ChannelViewerTransport: ViewerTransport {
    let channel: any Channel

    var executorID: ObjectIdentifier { ObjectIdentifier(channel.eventLoop) }

    func execute(_ body: @escaping @Sendable () -> Void) {
        channel.eventLoop.execute(body)
    }

    var isWritable: Bool { channel.isWritable && channel.isActive }

    func write(_ frame: ViewerFrame) {
        switch frame {
        case .binary(let buffer):
            channel.write(WebSocketFrame(fin: true, opcode: .binary, data: buffer), promise: nil)
        case .text(let text):
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
        }
    }

    func flush() {
        channel.flush()
    }
}
