import NIOCore
import NIOPosix
import NIOWebSocket
import Relay

/// A viewer's WebSocket as the relay's fan-out writes it: on its event loop, with one flush per
/// batch. Frames are encoded once per fragment and event loop, and the same bytes go to every
/// viewer on that loop: they are written below the WebSocket encoder (``EncodedFrameWriter``), as
/// a server's frames are the same for every client (unmasked). Where that writer could not be
/// installed, frames go through the encoder like any other.
///
/// The WebSocket handler's own writer is used only to close: both reach the socket in the order
/// they reach the loop.
struct ChannelViewerTransport: ViewerTransport {
    let channel: any Channel
    let writer: NIOLoopBound<EncodedFrameWriter>?

    /// Installs the writer below the channel's WebSocket encoder (on its event loop).
    static func make(channel: any Channel) async -> ChannelViewerTransport {
        let writer = try? await channel.eventLoop.submit { () throws -> NIOLoopBound<EncodedFrameWriter> in
            let encoder = try channel.pipeline.syncOperations.handler(type: WebSocketFrameEncoder.self)
            let writer = EncodedFrameWriter()
            try channel.pipeline.syncOperations.addHandler(writer, position: .before(encoder))
            return NIOLoopBound(writer, eventLoop: channel.eventLoop)
        }.get()
        return ChannelViewerTransport(channel: channel, writer: writer)
    }

    var executorID: ObjectIdentifier { ObjectIdentifier(channel.eventLoop) }

    func execute(_ body: @escaping @Sendable () -> Void) {
        channel.eventLoop.execute(body)
    }

    var isWritable: Bool {
        if let writer = writer?.value { return writer.writable }
        return channel.isWritable && channel.isActive
    }

    func write(_ frame: ViewerFrame) {
        if let writer = writer?.value, let context = writer.context {
            let encoded: ByteBuffer
            switch frame {
            case .binary(let buffer): encoded = EncodedFrameCache.current.encoded(buffer, allocator: channel.allocator)
            case .text(let text): encoded = EncodedFrameCache.encode(ByteBuffer(string: text), opcode: 0x1, allocator: channel.allocator)
            }
            context.write(NIOAny(encoded), promise: nil)
            return
        }
        switch frame {
        case .binary(let buffer):
            channel.write(WebSocketFrame(fin: true, opcode: .binary, data: buffer), promise: nil)
        case .text(let text):
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
        }
    }

    func flush() {
        if let writer = writer?.value, let context = writer.context {
            context.flush()
        } else {
            channel.flush()
        }
    }
}

/// A pass-through handler just below a viewer's WebSocket encoder: the fan-out writes ready-made
/// frames from its context, so they skip the encoder; everything else passes through it. It also
/// keeps whether the socket takes more, from writability events (cheaper than asking the channel
/// before every write).
final class EncodedFrameWriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var context: ChannelHandlerContext?
    private(set) var writable = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writable = context.channel.isWritable && context.channel.isActive
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        writable = false
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable && context.channel.isActive
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        writable = false
        context.fireChannelInactive()
    }
}

/// The last fragment encoded as a WebSocket frame on this thread: an event loop writes one
/// fragment to all its viewers in a row, so one encoding serves them all. (Unchecked Sendable:
/// each instance is only ever used by the thread it belongs to.)
final class EncodedFrameCache: @unchecked Sendable {
    private var raw: ByteBuffer?
    private var frame: ByteBuffer?

    private static let perThread = ThreadSpecificVariable<EncodedFrameCache>()

    static var current: EncodedFrameCache {
        if let cache = perThread.currentValue { return cache }
        let cache = EncodedFrameCache()
        perThread.currentValue = cache
        return cache
    }

    /// `payload` as a binary frame; the same bytes as last time if it is the same buffer.
    func encoded(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        if let raw, let frame, Self.sameBytes(raw, payload) { return frame }
        let frame = Self.encode(payload, opcode: 0x2, allocator: allocator)
        self.raw = payload
        self.frame = frame
        return frame
    }

    /// Whether two buffers view the same memory (kept alive by `raw`, so it cannot be reused).
    private static func sameBytes(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool {
        guard a.readableBytes == b.readableBytes else { return false }
        return a.withUnsafeReadableBytes { x in b.withUnsafeReadableBytes { y in x.baseAddress == y.baseAddress } }
    }

    /// A final, unmasked frame (what a server sends) with `opcode` and `payload`.
    static func encode(_ payload: ByteBuffer, opcode: UInt8, allocator: ByteBufferAllocator) -> ByteBuffer {
        let length = payload.readableBytes
        var frame = allocator.buffer(capacity: length + 10)
        frame.writeInteger(0x80 | opcode)
        if length < 126 {
            frame.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            frame.writeInteger(UInt8(126))
            frame.writeInteger(UInt16(length))
        } else {
            frame.writeInteger(UInt8(127))
            frame.writeInteger(UInt64(length))
        }
        var payload = payload
        frame.writeBuffer(&payload)
        return frame
    }
}
