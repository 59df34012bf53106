import Foundation
import Testing
import Trust

@Suite("Watch tokens and signed records")
struct SignatureTests {
    let tokens = WatchTokens(key: Secret("watch-token-key-0123456789"))

    @Test func aTokenIsValidForItsTopicUntilItExpires() {
        let token = tokens.token(topic: "cam", expiresAtSeconds: 2_000)
        #expect(tokens.check(token, topic: "cam", nowSeconds: 1_999) == .valid(expiresAtSeconds: 2_000))
        #expect(tokens.check(token, topic: "cam", nowSeconds: 2_000) == .expired)
        #expect(tokens.check(token, topic: "cam2", nowSeconds: 1_000) == .invalid)
        #expect(tokens.check(nil, topic: "cam", nowSeconds: 1_000) == .missing)
        let other = WatchTokens(key: Secret("another-key-0123456789abc"))
        #expect(other.check(token, topic: "cam", nowSeconds: 1_000) == .invalid)
    }

    @Test func tamperedTokensAreRefused() {
        let token = tokens.token(topic: "cam", expiresAtSeconds: 2_000)
        let later = token.replacingOccurrences(of: "2000.", with: "9000.")
        #expect(tokens.check(later, topic: "cam", nowSeconds: 1_000) == .invalid, "extending the expiry breaks the signature")
        for bad in ["", "2000", "2000.", ".abc", "x.abc", "-5.abc", "2000.!!!", "2000." + String(repeating: "A", count: 200)] {
            #expect(tokens.check(bad, topic: "cam", nowSeconds: 1_000) != .valid(expiresAtSeconds: 2_000), "\(bad)")
        }
        var flipped = Array(token)
        flipped[flipped.count - 2] = flipped[flipped.count - 2] == "A" ? "B" : "A"
        #expect(tokens.check(String(flipped), topic: "cam", nowSeconds: 1_000) == .invalid)
    }

    @Test func recordsVerifyOnlyWithTheSameKeyTopicAndBytes() {
        let signer = RecordSigner(key: Secret("operator-key-0123456789"))
        let value = Array(#"{"id":"c-1","type":"command"}"#.utf8)
        let signature = Array(signer.signature(topic: "kvb.control", value: value).utf8)
        #expect(signature.count == 67)
        #expect(signer.verify(topic: "kvb.control", value: value, signature: signature) == .valid)
        #expect(signer.verify(topic: "kvb.status", value: value, signature: signature) == .badSignature, "bound to its topic")
        #expect(signer.verify(topic: "kvb.control", value: value + [0x20], signature: signature) == .badSignature)
        #expect(signer.verify(topic: "kvb.control", value: value, signature: nil) == .unsigned)
        #expect(signer.verify(topic: "kvb.control", value: value, signature: []) == .unsigned)
        #expect(signer.verify(topic: "kvb.control", value: value, signature: Array("v1=zz".utf8)) == .badSignature)
        let forger = RecordSigner(key: Secret("guessed-key-0123456789"))
        let forged = Array(forger.signature(topic: "kvb.control", value: value).utf8)
        #expect(signer.verify(topic: "kvb.control", value: value, signature: forged) == .badSignature)
    }
}
