import Histogram
import LoadGenerator
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A load-generating viewer written as a NIO channel handler: every message is checked and timed
/// on its event loop as it arrives, with no task per message. (WSClient's async API costs more
/// per message than the relay does, which would make the generator, not the relay, the
/// bottleneck at thousands of viewers.)
enum RawViewer {
    /// Connects, upgrades to a WebSocket on `path`, and checks everything it gets until `stop`
    /// fires. Returns what it saw.
    static func watch(group: any EventLoopGroup, port: Int, path: String, stream: PublishedStream, log: SendLog, window: MeasureWindow,
                      slow: Bool, connected: Tally, stop: StopSignal) async -> ViewerOutcome {
        let finished = group.next().makePromise(of: ViewerOutcome.self)
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let checker = NIOLoopBound(Checker(stream: stream, log: log, window: window, slow: slow, connected: connected, finished: finished),
                                           eventLoop: channel.eventLoop)
                let request = NIOLoopBound(UpgradeRequest(path: path, port: port), eventLoop: channel.eventLoop)
                let failure = NIOLoopBound(Failure(finished: finished), eventLoop: channel.eventLoop)
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: LoadClients.maxMessage) { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        // Upgraded: only the checker is left to read WebSocket frames.
                        channel.pipeline.syncOperations.removeHandler(request.value, promise: nil)
                        channel.pipeline.syncOperations.removeHandler(failure.value, promise: nil)
                        try channel.pipeline.syncOperations.addHandler(checker.value)
                    }
                }
                // Frames that arrive with the upgrade response must reach the checker, not be dropped.
                try channel.pipeline.syncOperations.addHTTPClientHandlers(
                    leftOverBytesStrategy: .forwardBytes, withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                try channel.pipeline.syncOperations.addHandler(request.value)
                try channel.pipeline.syncOperations.addHandler(failure.value)
            }
        }
        do {
            let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
            Task {
                await stop.wait()
                channel.close(promise: nil)
            }
            return try await finished.futureResult.get()
        } catch {
            finished.fail(error)
            var outcome = ViewerOutcome()
            outcome.error = "\(error)"
            return outcome
        }
    }

    /// Sends the upgrade request once connected.
    private final class UpgradeRequest: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart
        let path: String
        let port: Int

        init(path: String, port: Int) {
            self.path = path
            self.port = port
        }

        func channelActive(context: ChannelHandlerContext) {
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "127.0.0.1:\(port)")
            headers.add(name: "Content-Length", value: "0")
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // A response that is not an upgrade (a refusal): the connection ends with it.
            context.close(promise: nil)
        }
    }

    /// Ends the viewer with what went wrong if the connection fails before its checker runs.
    private final class Failure: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let finished: EventLoopPromise<ViewerOutcome>

        init(finished: EventLoopPromise<ViewerOutcome>) {
            self.finished = finished
        }

        func channelInactive(context: ChannelHandlerContext) {
            var outcome = ViewerOutcome()
            outcome.error = "closed before the WebSocket upgrade"
            finished.succeed(outcome)  // a no-op when the checker already finished it
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// Checks every message against the published stream and times the chunks it completes.
    private final class Checker: ChannelInboundHandler {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame
        let stream: PublishedStream
        let log: SendLog
        let window: MeasureWindow
        let slow: Bool
        let connected: Tally
        let finished: EventLoopPromise<ViewerOutcome>
        var outcome = ViewerOutcome()
        /// A message arriving in several frames.
        var pending: ByteBuffer?
        var pendingIsText = false

        init(stream: PublishedStream, log: SendLog, window: MeasureWindow, slow: Bool, connected: Tally, finished: EventLoopPromise<ViewerOutcome>) {
            self.stream = stream
            self.log = log
            self.window = window
            self.slow = slow
            self.connected = connected
            self.finished = finished
        }

        func handlerAdded(context: ChannelHandlerContext) {
            outcome.connected = true
            outcome.slow = slow
            connected.add()
            if slow {
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
                scheduleRead(context)
            }
        }

        private func scheduleRead(_ context: ChannelHandlerContext) {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(400)) {
                let context = bound.value
                guard context.channel.isActive else { return }
                context.read()
                self.scheduleRead(context)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.opcode {
            case .ping:
                let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
                context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            case .connectionClose:
                var data = frame.unmaskedData
                outcome.closeCode = data.readInteger(as: UInt16.self).map(String.init)
                context.close(promise: nil)
            case .text, .binary:
                if frame.fin {
                    message(frame.unmaskedData, text: frame.opcode == .text)
                } else {
                    pending = frame.unmaskedData
                    pendingIsText = frame.opcode == .text
                }
            case .continuation:
                var data = frame.unmaskedData
                pending?.writeBuffer(&data)
                if frame.fin, let whole = pending {
                    pending = nil
                    message(whole, text: pendingIsText)
                }
            default:
                break
            }
        }

        private func message(_ data: ByteBuffer, text: Bool) {
            outcome.messages += 1
            if text {
                outcome.check.text(String(buffer: data))
                return
            }
            let completed = data.withUnsafeReadableBytes { outcome.check.binary($0, stream: stream) }
            let now = nowNanoseconds()
            guard !completed.isEmpty, window.contains(now) else { return }
            for (_, chunk) in completed {
                guard let sent = log.sentAt(chunk), now > sent else { continue }
                _ = outcome.latency.record((now - sent) / 1000)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            finished.succeed(outcome)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if outcome.error == nil { outcome.error = "\(error)" }
            context.close(promise: nil)
        }
    }
}
