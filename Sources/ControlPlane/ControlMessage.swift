/// What travels on the control topic: commands from consoles and acknowledgements from relays.
public enum ControlMessage: Codable, Sendable, Equatable {
    case command(ControlCommand)
    case ack(CommandAck)

    private enum CodingKeys: String, CodingKey { case type }

    public init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        switch type {
        case "command": self = .command(try ControlCommand(from: decoder))
        case "ack": self = .ack(try CommandAck(from: decoder))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.type], debugDescription: "unknown control message type \(type)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .command(let command):
            try container.encode("command", forKey: .type)
            try command.encode(to: encoder)
        case .ack(let ack):
            try container.encode("ack", forKey: .type)
            try ack.encode(to: encoder)
        }
    }
}

/// An operator's command. Every relay reads it; the ones that hold the target act on it once
/// (by `id`) and acknowledge.
public struct ControlCommand: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable {
        /// Close a viewer's socket with 4001; its page stays away for the ban period.
        case kick
        /// Stop delivering a topic to its viewers on every relay; Kafka keeps everything.
        case pause
        case resume
        /// Move a viewer (`viewer` set) or every viewer of `topic` to the topic `to`.
        case `switch`
    }

    public var id: String
    public var action: Action
    public var topic: String?
    /// Session id of the target viewer (`v-N`), with `relay` naming its relay.
    public var viewer: String?
    public var relay: String?
    /// Target topic of a switch.
    public var to: String?
    public var issuedAtMilliseconds: Int64
    /// Who issued it (console id), for the logs.
    public var issuedBy: String

    public init(id: String, action: Action, topic: String? = nil, viewer: String? = nil, relay: String? = nil,
                to: String? = nil, issuedAtMilliseconds: Int64, issuedBy: String) {
        self.id = id
        self.action = action
        self.topic = topic
        self.viewer = viewer
        self.relay = relay
        self.to = to
        self.issuedAtMilliseconds = issuedAtMilliseconds
        self.issuedBy = issuedBy
    }
}

/// A relay's answer to a command.
public struct CommandAck: Codable, Sendable, Equatable {
    public var command: String
    public var relay: String
    public var ok: Bool
    /// What happened, for the console's status line: "kicked v-3 on r1", "no such viewer".
    public var message: String
    public var atMilliseconds: Int64

    public init(command: String, relay: String, ok: Bool, message: String, atMilliseconds: Int64) {
        self.command = command
        self.relay = relay
        self.ok = ok
        self.message = message
        self.atMilliseconds = atMilliseconds
    }
}

/// Names of the control plane's topics.
public enum ControlTopics {
    public static let status = "kvb.status"
    public static let control = "kvb.control"
}
