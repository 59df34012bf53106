import Foundation

/// JSON encoding of the control plane's documents. Decoding never throws: anything that is not a
/// valid document (garbage on the topic, another version's fields) gives nil and is counted by
/// the caller.
public enum ControlPlaneCodec {
    public static func encode(_ status: RelayStatus) -> [UInt8] {
        (try? Array(encoder.encode(status))) ?? []
    }

    public static func encode(_ message: ControlMessage) -> [UInt8] {
        (try? Array(encoder.encode(message))) ?? []
    }

    public static func decodeStatus(_ bytes: [UInt8]) -> RelayStatus? {
        try? JSONDecoder().decode(RelayStatus.self, from: Data(bytes))
    }

    public static func decodeControl(_ bytes: [UInt8]) -> ControlMessage? {
        try? JSONDecoder().decode(ControlMessage.self, from: Data(bytes))
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
