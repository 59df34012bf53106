/// The sessions Kafka still holds across a cluster's topics, newest first: `GET /api/recordings`
/// (the front page's list) and the console's Recordings view.
public struct RecordingList: Sendable, Equatable, Codable {
    /// One session and its topic.
    public struct Recording: Sendable, Equatable, Codable {
        public var topic: String
        public var session: RecordedSession

        public init(topic: String, session: RecordedSession) {
            self.topic = topic
            self.session = session
        }
    }

    /// Newest first (by start), at most the limit asked for.
    public var recordings: [Recording]
    /// Sessions found in all, before the limit.
    public var total: Int
    /// Topics whose sessions were read.
    public var topics: Int
    /// Topics not read to their end yet (there was more to read than one listing may take); a
    /// later listing goes on where this one stopped.
    public var pendingTopics: [String]
    /// When the list was made (ms since the Unix epoch).
    public var madeAtMilliseconds: Int64

    public init(recordings: [Recording], total: Int, topics: Int, pendingTopics: [String], madeAtMilliseconds: Int64) {
        self.recordings = recordings
        self.total = total
        self.topics = topics
        self.pendingTopics = pendingTopics
        self.madeAtMilliseconds = madeAtMilliseconds
    }

    /// The list of `sessions` by topic: newest start first (ties by topic, then id), `limit` of them.
    public init(sessions: [String: [RecordedSession]], limit: Int, pendingTopics: [String], madeAtMilliseconds: Int64) {
        let all = sessions.flatMap { topic, list in list.map { Recording(topic: topic, session: $0) } }
            .sorted { a, b in
                if a.session.startedAtMilliseconds != b.session.startedAtMilliseconds {
                    return a.session.startedAtMilliseconds > b.session.startedAtMilliseconds
                }
                return (a.topic, a.session.id) < (b.topic, b.session.id)
            }
        self.init(recordings: Array(all.prefix(max(0, limit))), total: all.count, topics: sessions.count,
                  pendingTopics: pendingTopics.sorted(), madeAtMilliseconds: madeAtMilliseconds)
    }
}
