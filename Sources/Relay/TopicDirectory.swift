/// What a relay has learnt about which topics carry kvb streams and which hold other
/// applications' records, so the topic list shows only streams and a publisher never writes into
/// someone else's topic. Pure and bounded: the relay probes topics and records the verdicts here.
struct TopicDirectory: Sendable {
    enum Verdict: Sendable, Equatable {
        /// Its newest records carry kvb headers.
        case kvb
        /// It holds records that are not kvb's.
        case foreign
    }

    /// Most topics remembered; past this the oldest verdicts are forgotten (and probed again).
    let capacity: Int
    /// A foreign verdict is checked again after this (the topic may have been deleted and reused).
    let foreignRecheckMilliseconds: Int64
    private var verdicts: [String: (verdict: Verdict, at: Int64)] = [:]

    init(capacity: Int = 10_000, foreignRecheckMilliseconds: Int64 = 600_000) {
        self.capacity = capacity
        self.foreignRecheckMilliseconds = foreignRecheckMilliseconds
    }

    var count: Int { verdicts.count }

    /// The remembered verdict, nil when the topic must be probed.
    func verdict(for topic: String, nowMilliseconds now: Int64) -> Verdict? {
        guard let entry = verdicts[topic] else { return nil }
        if entry.verdict == .foreign, now - entry.at > foreignRecheckMilliseconds { return nil }
        return entry.verdict
    }

    mutating func record(_ verdict: Verdict, for topic: String, nowMilliseconds now: Int64) {
        if verdicts[topic] == nil, verdicts.count >= capacity {
            // Forget the oldest tenth: they will be probed again if they are listed again.
            let oldest = verdicts.sorted { $0.value.at < $1.value.at }.prefix(max(1, capacity / 10))
            for (name, _) in oldest { verdicts[name] = nil }
        }
        verdicts[topic] = (verdict, now)
    }

    /// Forgets topics the cluster no longer lists.
    mutating func retain(only topics: Set<String>) {
        verdicts = verdicts.filter { topics.contains($0.key) }
    }
}

/// What the newest records of a topic say about it.
enum TopicContents: Sendable, Equatable {
    /// No records (or no topic).
    case empty
    /// Its newest record is this kvb fragment.
    case kvb(StreamFragment)
    /// Its newest records are not kvb's (or could not be read although it is not empty).
    case foreign
    /// Kafka did not answer.
    case unreachable(String)
}
