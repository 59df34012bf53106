import Testing
import Trust

@Suite("Publish keys and topic patterns")
struct PublishKeysTests {
    @Test(arguments: [
        ("*", "anything", true), ("cam-*", "cam-1", true), ("cam-*", "cam-", true), ("cam-*", "cam", false),
        ("cam-?", "cam-1", true), ("cam-?", "cam-12", false), ("*-live", "a-b-live", true), ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false), ("exact", "exact", true), ("exact", "exactly", false), ("*a*a*a*a*b", String(repeating: "a", count: 249), false),
    ])
    func globsMatchTopics(pattern: String, topic: String, matches: Bool) throws {
        #expect(try TopicPattern(pattern).matches(topic) == matches)
    }

    @Test(arguments: ["", "bad pattern", "ü*", String(repeating: "x", count: 250)])
    func badPatternsAreRefused(pattern: String) {
        #expect(throws: TrustError.self) { try TopicPattern(pattern) }
    }

    @Test func noKeysMeansOpen() {
        #expect(PublishKeys().check(topic: "t", presented: nil) == .open)
    }

    @Test func theRightKeyForTheTopicIsGranted() throws {
        let keys = try PublishKeys(specifications: ["cam-*=camera-secret", "lobby=lobby=with=equals"])
        #expect(keys.check(topic: "cam-1", presented: "camera-secret") == .granted)
        #expect(keys.check(topic: "lobby", presented: "lobby=with=equals") == .granted, "a secret may contain '='")
        #expect(keys.check(topic: "cam-1", presented: "lobby=with=equals") == .refused(.wrongKey), "another topic's key")
        #expect(keys.check(topic: "cam-1", presented: nil) == .refused(.missingKey))
        #expect(keys.check(topic: "cam-1", presented: "") == .refused(.missingKey))
        #expect(keys.check(topic: "other", presented: "camera-secret") == .refused(.noKeyForTopic))
    }

    @Test func listsAndFilesParseWithCommentsAndBlankLines() throws {
        var keys = PublishKeys()
        try keys.add(list: "# studio keys\n\ncam-*=camera-secret\r\nnews=news-secret-1, sport=sport-secret", source: "KVB_PUBLISH_KEYS")
        #expect(keys.entries.map(\.pattern.text) == ["cam-*", "news", "sport"])
        #expect(keys.check(topic: "sport", presented: "sport-secret") == .granted)
    }

    @Test(arguments: ["no-equals", "=secret-without-pattern", "cam=short", "bad pattern=long-enough-secret"])
    func badSpecificationsSayWhat(spec: String) {
        #expect(throws: TrustError.self) { try PublishKeys(specifications: [spec]) }
    }

    @Test func secretsNeverShowInDescriptions() throws {
        let keys = try PublishKeys(specifications: ["*=do-not-print-me"])
        #expect(!"\(keys)".contains("do-not-print-me"))
        #expect(!String(reflecting: keys).contains("do-not-print-me"))
        #expect("\(Secret("do-not-print-me"))" == "<secret>")
    }

    @Test func secretsCompareExactly() {
        let secret = Secret("abcdefgh")
        #expect(secret.matches("abcdefgh"))
        #expect(!secret.matches("abcdefgH"))
        #expect(!secret.matches("abcdefg"))
        #expect(!secret.matches("abcdefghi"))
        #expect(!secret.matches(""))
        #expect(Secret.randomHex().count == 64)
        #expect(Secret.randomHex() != Secret.randomHex())
    }
}
