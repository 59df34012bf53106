import ControlPlane
import Foundation
import Kafka
import Logging
import Trust

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
            // A kick names one relay's one viewer.
            guard command.relay != nil else { return nil }
            guard let id = command.viewer else { return ack(false, "kick needs a viewer") }
            guard let viewer = (viewers + replayViewers).first(where: { $0.id == id }) else { return ack(false, "no viewer \(id) on \(relayID)") }
            // Ban what the relay can check itself, the address, besides the page's client id.
            let until = currentMilliseconds() + settings.kickBanMilliseconds
            let capacity = settings.limits.bannedClients
            state.withLock { state in
                let now = currentMilliseconds()
                if state.bannedClients.count >= capacity { state.bannedClients = state.bannedClients.filter { $0.value > now } }
                if state.bannedAddresses.count >= capacity { state.bannedAddresses = state.bannedAddresses.filter { $0.value > now } }
                if !viewer.clientID.isEmpty, state.bannedClients.count < capacity { state.bannedClients[viewer.clientID] = until }
                if !viewer.remoteHost.isEmpty, state.bannedAddresses.count < capacity { state.bannedAddresses[viewer.remoteHost] = until }
            }
            viewer.close(.init(code: 4001, reason: "removed by the operator"))
            logger.notice("viewer kicked by the operator", metadata: ["viewer": "\(id)", "topic": "\(viewer.topic)", "by": "\(command.issuedBy)"])
            return ack(true, "kicked \(id) (\(viewer.topic))")
        case .pause, .resume:
            guard let name = command.topic, let topic = try? TopicName(name) else { return ack(false, "invalid topic") }
            let pause = command.action == .pause
            let capacity = settings.limits.pausedTopics
            let applied = state.withLock { state -> (Bool, TopicFeed?) in
                if pause {
                    guard state.pausedTopics.contains(topic) || state.pausedTopics.count < capacity else { return (false, nil) }
                    state.pausedTopics.insert(topic)
                } else {
                    state.pausedTopics.remove(topic)
                }
                return (true, state.feeds[topic])
            }
            guard applied.0 else { return ack(false, "\(capacity) topics are paused already (the limit); resume some first") }
            let feed = applied.1
            feed?.setPaused(pause)
            logger.notice("\(pause ? "paused" : "resumed") by the operator", metadata: ["topic": "\(topic)", "by": "\(command.issuedBy)"])
            return ack(true, "\(pause ? "paused" : "resumed") \(topic) (\(feed?.viewerCount ?? 0) viewers here)")
        case .switch:
            guard let toName = command.to, let target = try? TopicName(toName) else { return ack(false, "switch needs a valid target topic") }
            do { try settings.access.allows(topic: target) } catch { return ack(false, error.description) }
            let movers: [ViewerConnection]
            if let id = command.viewer {
                movers = viewers.filter { $0.id == id }
                if movers.isEmpty { return command.relay == nil ? nil : ack(false, "no viewer \(id) on \(relayID)") }
            } else {
                guard let name = command.topic else { return ack(false, "switch needs a viewer or a topic") }
                movers = viewers.filter { $0.topic.value == name }
            }
            for viewer in movers {
                detach(viewer)
                viewer.setTopic(target)
                viewer.restart()
                let token = settings.access.watchTokens.flatMap { tokens in
                    viewer.watchTokenExpiresAt.map { tokens.token(topic: target.value, expiresAtSeconds: $0) }
                }
                viewer.send(notice: ViewerNotice.switched(to: target, token: token))
                do { try await attach(viewer, to: target) } catch { viewer.close(.init(code: error.closeCode, reason: error.description)) }
            }
            return ack(true, "moved \(movers.count) viewer\(movers.count == 1 ? "" : "s") to \(target)")
        }
    }
}
