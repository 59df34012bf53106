/// The console's views, switched with Tab or their number key.
public enum ConsoleView: Int, CaseIterable, Sendable {
    case relays = 1, sessions, topics, latency, recordings

    public var title: String {
        switch self {
        case .relays: "Relays"
        case .sessions: "Sessions"
        case .topics: "Topics"
        case .latency: "Lag & latency"
        case .recordings: "Recordings"
        }
    }
}
