import Crypto
import Foundation

/// Signed watch tokens, like a CDN's signed URLs: `EXPIRY.SIGNATURE`, where EXPIRY is a Unix time
/// in seconds and SIGNATURE is base64url(HMAC-SHA256(key, "kvb-watch-v1\n" + topic + "\n" + EXPIRY)).
/// A token lets its holder watch one topic until it expires. Off unless a key is configured.
public struct WatchTokens: Sendable {
    private let key: Secret

    public init(key: Secret) {
        self.key = key
    }

    /// A token for `topic`, valid until `expiresAtSeconds` (Unix time).
    public func token(topic: String, expiresAtSeconds: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Self.message(topic: topic, expiry: expiresAtSeconds), using: key.key)
        return "\(expiresAtSeconds).\(Base64URL.encode(Array(mac)))"
    }

    /// Checks a presented token for `topic` at `nowSeconds`.
    public func check(_ token: String?, topic: String, nowSeconds: Int64) -> WatchTokenCheck {
        guard let token, !token.isEmpty else { return .missing }
        guard token.utf8.count <= 128, let dot = token.firstIndex(of: "."),
              let expiry = Int64(token[..<dot]), expiry > 0,
              let signature = Base64URL.decode(String(token[token.index(after: dot)...])), signature.count == 32
        else { return .malformed }
        let valid = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Self.message(topic: topic, expiry: expiry), using: key.key)
        guard valid else { return .invalid }
        guard expiry > nowSeconds else { return .expired }
        return .valid(expiresAtSeconds: expiry)
    }

    private static func message(topic: String, expiry: Int64) -> [UInt8] {
        Array("kvb-watch-v1\n\(topic)\n\(expiry)".utf8)
    }
}

/// The outcome of a watch-token check.
public enum WatchTokenCheck: Sendable, Equatable {
    case valid(expiresAtSeconds: Int64)
    case missing
    case malformed
    /// Signed with another key, or for another topic.
    case invalid
    case expired

    /// For the `reason` label of the rejection counter.
    public var label: String {
        switch self {
        case .valid: "ok"
        case .missing: "watch_token_missing"
        case .malformed, .invalid: "watch_token_invalid"
        case .expired: "watch_token_expired"
        }
    }

    /// What the viewer is told.
    public var message: String {
        switch self {
        case .valid: "ok"
        case .missing: "this relay needs a watch token: open the watch URL the operator gave you"
        case .malformed: "the watch token is malformed"
        case .invalid: "the watch token is not valid for this topic"
        case .expired: "the watch token has expired: ask for a new watch URL"
        }
    }
}

/// base64url without padding (RFC 4648 §5), as used in URLs.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
        }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
