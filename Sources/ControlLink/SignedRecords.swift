import ControlPlane
import Kafka
import Trust

/// The control plane's records on Kafka, signed with the operator key: relays' status documents
/// on `kvb.status`, consoles' commands and relays' acknowledgements on `kvb.control`. Each record
/// carries an HMAC over its topic and exact bytes in the `kvb-sig` header (see ``RecordSigner``).
/// Shared by the relay and the console, so both sides sign and check the same way.
public struct SignedRecords: Sendable {
    /// nil without an operator key: records go out unsigned and nothing can be verified.
    public let signer: RecordSigner?

    public init(operatorKey: Secret?) {
        signer = operatorKey.map(RecordSigner.init)
    }

    /// A status document to publish, keyed by its relay.
    public func record(_ status: RelayStatus) -> KafkaOutgoingMessage {
        record(topic: ControlTopics.status, key: status.relay, value: ControlPlaneCodec.encode(status))
    }

    /// A command or acknowledgement to publish, keyed by the command's id.
    public func record(_ message: ControlMessage) -> KafkaOutgoingMessage {
        let key: String = switch message {
        case .command(let command): command.id
        case .ack(let ack): ack.command
        }
        return record(topic: ControlTopics.control, key: key, value: ControlPlaneCodec.encode(message))
    }

    private func record(topic: String, key: String, value: [UInt8]) -> KafkaOutgoingMessage {
        var headers: [KafkaHeader] = []
        if let signer { headers.append(KafkaHeader(RecordSigner.header, string: signer.signature(topic: topic, value: value))) }
        return KafkaOutgoingMessage(topic: topic, partition: 0, key: Array(key.utf8), value: value, headers: headers)
    }

    /// Whether a consumed control-plane record is signed with the operator key. Without a key
    /// nothing can be checked: `.unsigned`.
    public func verify(_ message: KafkaMessage) -> SignatureCheck {
        guard let signer else { return .unsigned }
        return signer.verify(topic: message.topic, value: message.value, signature: message.header(RecordSigner.header))
    }

    /// Why a status document must be ignored, nil when it may be read: with a key, only documents
    /// signed with it; without one, every document, unverified (there is nothing to check with).
    public func refusal(ofStatus message: KafkaMessage) -> SignatureCheck? {
        guard signer != nil else { return nil }
        let check = verify(message)
        return check == .valid ? nil : check
    }
}
