import ControlPlane
import Testing
import Trust
@testable import Relay

@Suite("Which operator commands a relay applies")
struct CommandGateTests {
    static func command(_ id: String, at time: Int64) -> ControlMessage {
        .command(ControlCommand(id: id, action: .pause, topic: "cam", issuedAtMilliseconds: time, issuedBy: "test"))
    }

    @Test func onlySignedFreshFirstSeenCommandsAreApplied() {
        var gate = CommandGate(operatorKey: true)
        let now: Int64 = 1_000_000
        #expect(gate.admit(Self.command("a", at: now), signature: .valid, nowMilliseconds: now) == .apply(
            ControlCommand(id: "a", action: .pause, topic: "cam", issuedAtMilliseconds: now, issuedBy: "test")))
        #expect(gate.admit(Self.command("a", at: now), signature: .valid, nowMilliseconds: now + 10) == .refuse(reason: "replayed"))
        #expect(gate.admit(Self.command("b", at: now), signature: .unsigned, nowMilliseconds: now) == .refuse(reason: "unsigned"))
        #expect(gate.admit(Self.command("c", at: now), signature: .badSignature, nowMilliseconds: now) == .refuse(reason: "bad_signature"))
        #expect(gate.admit(Self.command("d", at: now - 60_000), signature: .valid, nowMilliseconds: now) == .refuse(reason: "stale"))
        #expect(gate.admit(Self.command("e", at: now + 60_000), signature: .valid, nowMilliseconds: now) == .refuse(reason: "future"))
        #expect(gate.admit(nil, signature: .valid, nowMilliseconds: now) == .refuse(reason: "unreadable"))
        #expect(gate.intake.rejected == ["replayed": 1, "unsigned": 1, "bad_signature": 1, "stale": 1, "future": 1, "unreadable": 1])
        #expect(gate.intake.rejectedTotal == 6)
    }

    @Test func aBadSignatureDoesNotBurnTheIdOfTheRealCommand() {
        var gate = CommandGate(operatorKey: true)
        #expect(gate.admit(Self.command("x", at: 5_000), signature: .badSignature, nowMilliseconds: 5_000) == .refuse(reason: "bad_signature"))
        if case .apply = gate.admit(Self.command("x", at: 5_000), signature: .valid, nowMilliseconds: 5_000) {} else {
            Issue.record("the genuine command with that id was refused")
        }
    }

    @Test func withoutAnOperatorKeyNothingIsApplied() {
        var gate = CommandGate(operatorKey: false)
        #expect(gate.admit(Self.command("a", at: 1_000), signature: .unsigned, nowMilliseconds: 1_000) == .refuse(reason: "no_operator_key"))
        #expect(gate.intake.operatorKey == false)
    }

    @Test func acknowledgementsAreNotCommands() {
        var gate = CommandGate(operatorKey: true)
        let ack = ControlMessage.ack(CommandAck(command: "a", relay: "r", ok: true, message: "", atMilliseconds: 1))
        #expect(gate.admit(ack, signature: .unsigned, nowMilliseconds: 1) == .ignore)
        #expect(gate.intake.rejectedTotal == 0)
    }
}

@Suite("Limits' building blocks")
struct LimitTests {
    @Test func aTokenBucketRefillsAtItsRateUpToItsCapacity() {
        var bucket = TokenBucket(capacity: 100, ratePerSecond: 50)
        #expect(bucket.take(100, nowMilliseconds: 0) == true)
        #expect(bucket.take(1, nowMilliseconds: 0) == false)
        #expect(bucket.take(25, nowMilliseconds: 500) == true, "half a second brings 25")
        #expect(bucket.take(1, nowMilliseconds: 500) == false)
        #expect(bucket.take(100, nowMilliseconds: 10_000) == true, "never more than the capacity")
        #expect(bucket.take(1, nowMilliseconds: 10_000) == false)
        #expect(bucket.take(1, nowMilliseconds: 5_000) == false, "a clock going backwards gives nothing")
    }

    @Test func everyLimitHasItsOwnLabelAndACloseCode() {
        #expect(Set(Limit.allCases.map(\.rawValue)).count == Limit.allCases.count)
        for limit in Limit.allCases {
            #expect([1009, 4408, 4413, 4429, 4503].contains(limit.closeCode), "\(limit)")
            #expect(RelayError.limit(limit, "x").label == limit.rawValue)
        }
        for reason in Forbidden.allCases { #expect(RelayError.forbidden(reason, "x").closeCode == 4003) }
    }

    @Test func theTopicDirectoryIsBoundedAndRechecksForeignTopics() {
        var directory = TopicDirectory(capacity: 10, foreignRecheckMilliseconds: 1_000)
        directory.record(.foreign, for: "_schemas", nowMilliseconds: 0)
        directory.record(.kvb, for: "cam", nowMilliseconds: 0)
        #expect(directory.verdict(for: "_schemas", nowMilliseconds: 500) == .foreign)
        #expect(directory.verdict(for: "_schemas", nowMilliseconds: 2_000) == nil, "probed again later")
        #expect(directory.verdict(for: "cam", nowMilliseconds: 2_000) == .kvb)
        for i in 0..<100 { directory.record(.kvb, for: "t\(i)", nowMilliseconds: Int64(i)) }
        #expect(directory.count <= 10)
        directory.retain(only: ["t99"])
        #expect(directory.count == 1)
    }
}

@Suite("Access policy")
struct AccessPolicyTests {
    @Test func keysPatternsAndTokensDecide() throws {
        var policy = AccessPolicy()
        policy.publishKeys = try PublishKeys(specifications: ["cam-*=camera-secret"])
        policy.topicPatterns = [try TopicPattern("cam-*"), try TopicPattern("lobby")]
        let tokens = WatchTokens(key: Secret("watch-token-key-0123456789"))
        policy.watchTokens = tokens
        let cam = try TopicName("cam-1")
        #expect(throws: Never.self) { try policy.checkPublish(topic: cam, key: "camera-secret") }
        #expect(throws: RelayError.forbidden(.publishKeyWrong, PublishRefusal.wrongKey.message)) { try policy.checkPublish(topic: cam, key: "nope-nope") }
        #expect(throws: RelayError.forbidden(.publishKeyMissing, PublishRefusal.missingKey.message)) { try policy.checkPublish(topic: cam, key: nil) }
        #expect { try policy.checkPublish(topic: TopicName("other"), key: "camera-secret") } throws: { error in
            (error as? RelayError)?.label == "topic_not_allowed"
        }
        #expect { try policy.checkPublish(topic: TopicName("lobby"), key: "camera-secret") } throws: { error in
            (error as? RelayError)?.label == "publish_topic_not_keyed"
        }
        let token = tokens.token(topic: "cam-1", expiresAtSeconds: 2_000)
        #expect(try policy.checkWatch(topic: cam, token: token, nowSeconds: 1_000) == 2_000)
        #expect { try policy.checkWatch(topic: cam, token: token, nowSeconds: 3_000) } throws: { ($0 as? RelayError)?.label == "watch_token_expired" }
        #expect { try policy.checkWatch(topic: cam, token: nil, nowSeconds: 1_000) } throws: { ($0 as? RelayError)?.label == "watch_token_missing" }
        #expect { try policy.checkWatch(topic: TopicName("lobby"), token: token, nowSeconds: 1_000) } throws: {
            ($0 as? RelayError)?.label == "watch_token_invalid"
        }
    }
}
