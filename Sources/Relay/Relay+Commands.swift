import ControlPlane
import Foundation
import Kafka
import Logging

/// The operator's commands from the control topic: kick, pause, resume, switch.
extension Relay {
    // MARK: - Operator commands

    /// Applies an operator's command if this relay holds its target; returns the acknowledgement
    /// to publish, or nil when the command is not for this relay.
    public func apply(_ command: ControlCommand) async -> CommandAck? {
        let relayID = settings.relayID
        func ack(_ ok: Bool, _ message: String) -> CommandAck {
            CommandAck(command: command.id, relay: relayID, ok: ok, message: message, atMilliseconds: currentMilliseconds())
        }
        if let target = command.relay, target != relayID { return nil }
        switch command.action {
        case .kick:
            guard let id = command.viewer else { return ack(false, "kick needs a viewer") }
            guard let viewer = viewers.first(where: { $0.id == id }) else {
                return command.relay == nil ? nil : ack(false, "no viewer \(id) on \(relayID)")
            }
            if !viewer.clientID.isEmpty {
                let until = currentMilliseconds() + settings.kickBanMilliseconds
                state.withLock { $0.bannedClients[viewer.clientID] = until }
            }
            viewer.close(.init(code: 4001, reason: "removed by the operator"))
            logger.notice("viewer kicked by the operator", metadata: ["viewer": "\(id)", "topic": "\(viewer.topic)", "by": "\(command.issuedBy)"])
            return ack(true, "kicked \(id) (\(viewer.topic))")
        case .pause, .resume:
            guard let name = command.topic, let topic = try? TopicName(name) else { return ack(false, "invalid topic") }
            let pause = command.action == .pause
            let feed = state.withLock { state -> TopicFeed? in
                if pause { state.pausedTopics.insert(topic) } else { state.pausedTopics.remove(topic) }
                return state.feeds[topic]
            }
            feed?.setPaused(pause)
            logger.notice("\(pause ? "paused" : "resumed") by the operator", metadata: ["topic": "\(topic)", "by": "\(command.issuedBy)"])
            return ack(true, "\(pause ? "paused" : "resumed") \(topic) (\(feed?.viewerCount ?? 0) viewers here)")
        case .switch:
            guard let toName = command.to, let target = try? TopicName(toName) else { return ack(false, "switch needs a valid target topic") }
            let movers: [ViewerConnection]
            if let id = command.viewer {
                movers = viewers.filter { $0.id == id }
                if movers.isEmpty { return command.relay == nil ? nil : ack(false, "no viewer \(id) on \(relayID)") }
            } else {
                guard let name = command.topic else { return ack(false, "switch needs a viewer or a topic") }
                movers = viewers.filter { $0.topic.value == name }
            }
            for viewer in movers {
                let from = viewer.topic
                detach(viewer, from: from)
                viewer.setTopic(target)
                viewer.restart()
                viewer.send(notice: ViewerNotice.switched(to: target))
                do { try await attach(viewer, to: target) } catch { viewer.close(.init(code: error.closeCode, reason: error.description)) }
            }
            return ack(true, "moved \(movers.count) viewer\(movers.count == 1 ? "" : "s") to \(target)")
        }
    }
}
