import Crypto

/// Signs and verifies control-plane records with the operator key: an HMAC-SHA256 over the
/// topic and the record's exact bytes (canonical JSON with sorted keys, which carries the
/// document's id and timestamp), sent in the `kvb-sig` header as `v1=HEX`.
///
/// Binding the topic means a status document cannot be replayed as a command, and signing the
/// exact bytes means no two encoders can disagree about what was signed.
public struct RecordSigner: Sendable {
    /// The Kafka header that carries the signature.
    public static let header = "kvb-sig"

    private let key: Secret

    public init(key: Secret) {
        self.key = key
    }

    /// The `kvb-sig` header value for `value` on `topic`.
    public func signature(topic: String, value: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Self.message(topic: topic, value: value), using: key.key)
        return "v1=" + Hex.encode(Array(mac))
    }

    /// Whether `signature` (the header's value, nil when absent) signs `value` on `topic`.
    public func verify(topic: String, value: [UInt8], signature: [UInt8]?) -> SignatureCheck {
        guard let signature, !signature.isEmpty else { return .unsigned }
        guard signature.count == 67, signature.starts(with: Array("v1=".utf8)),
              let mac = Hex.decode(signature.dropFirst(3))
        else { return .badSignature }
        let valid = HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.message(topic: topic, value: value), using: key.key)
        return valid ? .valid : .badSignature
    }

    private static func message(topic: String, value: [UInt8]) -> [UInt8] {
        Array("kvb-record-v1\n\(topic)\n".utf8) + value
    }
}

/// The outcome of checking a record's signature.
public enum SignatureCheck: Sendable, Equatable {
    case valid
    case unsigned
    case badSignature
}

enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 2)
        var high: UInt8?
        for c in text {
            guard let value = nibble(c) else { return nil }
            if let h = high {
                out.append(h << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return out
    }
}
