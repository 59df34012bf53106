import Relay
import Testing

@Suite("Topic names")
struct TopicNameTests {
    @Test(arguments: ["video", "cam-1", "a.b_c-D9", String(repeating: "x", count: 249)])
    func kafkaTopicNamesAreAccepted(name: String) throws {
        #expect(try TopicName(name).value == name)
    }

    @Test(arguments: [
        ("", "empty"), (".", "not a valid"), ("..", "not a valid"), ("has space", "letters, digits"),
        ("bad$name", "letters, digits"), ("ünïcode", "letters, digits"), (String(repeating: "x", count: 250), "249"),
        ("__consumer_offsets", "internal"), ("kvb.status", "control"),
    ])
    func namesKafkaOrKvbRejectAreRefusedWithTheReason(name: String, reason: String) {
        #expect {
            try TopicName(name)
        } throws: { error in
            guard let error = error as? RelayError, case .invalidTopic = error else { return false }
            return error.closeCode == 4400 && error.description.contains(reason)
        }
    }
}
