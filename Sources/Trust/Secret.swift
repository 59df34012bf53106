import Crypto
import Foundation

/// A shared secret (publish key, operator key, watch-token key). Its text never appears in logs
/// or descriptions, and presented values are compared with it in constant time.
public struct Secret: Sendable, CustomStringConvertible {
    /// The secret as HMAC key material.
    let key: SymmetricKey
    /// HMAC of the secret under a per-process key: presented values are compared against this
    /// MAC, in constant time and without revealing the secret's length.
    private let fingerprint: HashedAuthenticationCode<SHA256>

    /// Fewest characters an operator or watch-token key may have.
    public static let minimumStrongLength = 16

    public init(_ text: String) {
        key = SymmetricKey(data: Array(text.utf8))
        fingerprint = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: Self.comparisonKey)
    }

    /// A fresh random secret, as 64 hex characters (for generated key files).
    public static func randomHex(bytes: Int = 32) -> String {
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: bytes * 8))
        return key.withUnsafeBytes { raw in raw.map { String(format: "%02x", $0) }.joined() }
    }

    /// Whether `presented` is this secret. Constant time in the secret's content.
    public func matches(_ presented: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(fingerprint, authenticating: Array(presented.utf8), using: Self.comparisonKey)
    }

    public var description: String { "<secret>" }

    private static let comparisonKey = SymmetricKey(size: .bits256)
}
