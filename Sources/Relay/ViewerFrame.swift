import NIOCore

/// A WebSocket message for a viewer: a JSON control message or WebM bytes to append. A
/// fragment's bytes are one buffer shared by every viewer's frame.
public enum ViewerFrame: Sendable, Equatable {
    case text(String)
    case binary(ByteBuffer)

    var byteCount: Int {
        switch self {
        case .text(let s): s.utf8.count
        case .binary(let b): b.readableBytes
        }
    }
}

/// A frame taken from a viewer's queue, with the ingest time of the fragment it carries.
public struct ViewerDelivery: Sendable, Equatable {
    public var frame: ViewerFrame
    public var ingestMilliseconds: Int64?
}

/// The JSON control messages a viewer receives (docs/PROTOCOL.md).
public enum ViewerNotice {
    public static func hello(topic: TopicName, relay: String) -> String {
        #"{"type":"hello","topic":"\#(topic)","relay":"\#(jsonEscaped(relay))"}"#
    }
    public static func waiting(topic: TopicName) -> String { #"{"type":"waiting","topic":"\#(topic)"}"# }
    public static func reset(session: String, mimeType: String) -> String {
        #"{"type":"reset","session":"\#(jsonEscaped(session))","mimeType":"\#(jsonEscaped(mimeType))"}"#
    }
    public static func skipped(_ count: Int) -> String { #"{"type":"skipped","fragments":\#(count)}"# }
    public static func ended(session: String) -> String { #"{"type":"ended","session":"\#(jsonEscaped(session))"}"# }
    public static func paused(topic: TopicName) -> String { #"{"type":"paused","topic":"\#(topic)"}"# }
    /// A viewer of the past that chose to catch up has reached what Kafka holds: it may go live.
    public static func caughtUp(topic: TopicName) -> String { #"{"type":"caughtUp","topic":"\#(topic)"}"# }
    public static func resumed(topic: TopicName) -> String { #"{"type":"resumed","topic":"\#(topic)"}"# }
    /// `token`: a watch token for the new topic (when the relay requires tokens), valid as long as the old one.
    public static func switched(to topic: TopicName, token: String? = nil) -> String {
        if let token { return #"{"type":"switched","topic":"\#(topic)","token":"\#(jsonEscaped(token))"}"# }
        return #"{"type":"switched","topic":"\#(topic)"}"#
    }
    public static func error(_ message: String) -> String { #"{"type":"error","message":"\#(jsonEscaped(message))"}"# }
}

/// Escapes a string for use inside a JSON string literal.
public func jsonEscaped(_ string: String) -> String {
    var out = ""
    out.reserveCapacity(string.utf8.count)
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let s where s.value < 0x20:
            let hex = String(s.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
