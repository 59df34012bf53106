import HummingbirdCore
import Logging
import NIOCore

/// Wraps the server's child channel: every connection must deliver its first request's headers
/// within a deadline (slow or silent clients are cut off instead of holding a socket), and its
/// kernel send buffer is fixed (no autotuning to megabytes per socket: memory per connection
/// stays bounded, and a viewer that stops reading is noticed within seconds).
struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let deadline: TimeAmount
    let sendBufferBytes: Int
    let onTimeout: @Sendable () -> Void

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let handler = RequestHeadDeadlineHandler(deadline: deadline, onTimeout: onTimeout)
        return channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferBytes))
            .flatMap { channel.pipeline.addHandler(handler, position: .first) }
            .flatMap { base.setup(channel: channel, logger: logger) }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Closes the connection unless the end of the first request's headers (`\r\n\r\n`) arrives
/// within `deadline`; then steps out of the pipeline. Headers past 100 KiB also close it.
final class RequestHeadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let maxHeaderBytes = 100 << 10
    private let deadline: TimeAmount
    private let onTimeout: @Sendable () -> Void
    private var timer: Scheduled<Void>?
    private var seen = 0
    /// The last bytes of the previous read, so a terminator split across reads is found.
    private var tail: [UInt8] = []
    private var done = false

    init(deadline: TimeAmount, onTimeout: @escaping @Sendable () -> Void) {
        self.deadline = deadline
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let onTimeout = self.onTimeout
        timer = context.eventLoop.scheduleTask(in: deadline) {
            onTimeout()
            loopBound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !done {
            let buffer = unwrapInboundIn(data)
            let bytes = tail + buffer.readableBytesView
            seen += buffer.readableBytes
            if Self.containsHeaderEnd(bytes) {
                done = true
                timer?.cancel()
            } else if seen > Self.maxHeaderBytes {
                context.close(promise: nil)
                return
            } else {
                tail = Array(bytes.suffix(3))
            }
        }
        context.fireChannelRead(data)
        if done { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    static func containsHeaderEnd(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return true
        }
        return false
    }
}
