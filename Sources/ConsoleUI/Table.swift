import ControlPlane

/// One view's rows as text cells, with what each row stands for (for keys that act on it).
public struct Table: Sendable, Equatable {
    public struct Column: Sendable, Equatable {
        public var title: String
        /// Minimum width; flexible columns share what is left.
        public var width: Int
        public var alignment: Format.Alignment
        public var flexible: Bool

        public init(_ title: String, _ width: Int, _ alignment: Format.Alignment = .left, flexible: Bool = false) {
            self.title = title
            self.width = width
            self.alignment = alignment
            self.flexible = flexible
        }
    }

    /// What a row refers to.
    public enum Subject: Sendable, Equatable {
        case relay(String)
        case session(relay: String, id: String, role: SessionStatus.Role, topic: String)
        case topic(String, paused: Bool)
        case relayTopic(relay: String, topic: String)
        /// A session Kafka holds (view 5).
        case recording(topic: String, session: String)
    }

    public struct Row: Sendable, Equatable {
        public var cells: [String]
        public var subject: Subject
        public var stale: Bool
        public var paused: Bool
        /// Extra lines shown by Enter.
        public var details: [(String, String)]

        public static func == (lhs: Row, rhs: Row) -> Bool {
            lhs.cells == rhs.cells && lhs.subject == rhs.subject && lhs.stale == rhs.stale && lhs.paused == rhs.paused
        }
    }

    public var columns: [Column]
    public var rows: [Row]

    /// The columns each view shows, and which can be sorted (`s` cycles through them).
    public static func columns(for view: ConsoleView) -> [Column] {
        switch view {
        case .relays:
            [Column("RELAY", 16, flexible: true), Column("ADDRESS", 22, flexible: true), Column("UPTIME", 7, .right),
             Column("PUB", 4, .right), Column("VIEW", 5, .right), Column("IN", 9, .right), Column("OUT", 9, .right),
             Column("STATE", 5)]
        case .sessions:
            [Column("ROLE", 4), Column("ID", 10), Column("TOPIC", 12, flexible: true), Column("RELAY", 12, flexible: true),
             Column("REMOTE", 15, flexible: true), Column("SINCE", 6, .right), Column("RATE", 9, .right),
             Column("SKIP", 5, .right), Column("DELAY", 8, .right)]
        case .topics:
            [Column("TOPIC", 14, flexible: true), Column("STATE", 6), Column("PUB", 3, .right), Column("VIEW", 4, .right),
             Column("IN", 10, .right), Column("FRAG/S", 7, .right), Column("OUT", 10, .right), Column("LAG", 5, .right),
             Column("LATENCY", 8, .right)]
        case .latency:
            [Column("RELAY", 12, flexible: true), Column("TOPIC", 12, flexible: true), Column("LAG", 5, .right),
             Column("AGE", 6, .right), Column("ACK p50", 7, .right), Column("CONS p50", 8, .right),
             Column("WRITE p99", 9, .right), Column("GLASS p50", 9, .right), Column("RECENT", 10, .right)]
        case .recordings:
            [Column("TOPIC", 14, flexible: true), Column("STARTED", 11, .right), Column("LENGTH", 7, .right),
             Column("SIZE", 9, .right), Column("RELAY", 10, flexible: true), Column("STATE", 11)]
        }
    }

    /// Builds the rows of `view` from the fleet.
    public static func build(_ view: ConsoleView, fleet: Fleet, nowMilliseconds now: Int64) -> Table {
        let columns = columns(for: view)
        switch view {
        case .relays:
            let rows = fleet.sortedRelays.map { entry -> Row in
                let s = entry.status
                let stale = fleet.isStale(s.relay, nowMilliseconds: now)
                let inRate = s.topics.reduce(0) { $0 + $1.inBytesPerSecond }
                let outRate = s.topics.reduce(0) { $0 + $1.outBytesPerSecond }
                let publishers = s.sessions.filter { $0.role == .publisher }.count
                // A relay with many viewers lists them a page per document; it gives the total.
                let viewers = s.viewerPage.map(\.viewers) ?? s.sessions.filter { $0.role == .viewer }.count
                let uptime = Format.duration(milliseconds: now.saturatingSubtract(s.startedAtMilliseconds))
                return Row(
                    cells: [s.relay, s.address, uptime, "\(publishers)",
                            "\(viewers)", Format.byteRate(inRate), Format.byteRate(outRate),
                            stale ? "stale" : s.kafkaProblem != nil || s.kafkaError != nil ? "kafka" : "ok"],
                    subject: .relay(s.relay), stale: stale, paused: false,
                    details: [("relay", s.relay), ("address", s.address),
                              ("started", uptime + " ago"),
                              ("last report", Format.duration(milliseconds: now.saturatingSubtract(entry.receivedAtMilliseconds)) + " ago"),
                              ("kafka", s.kafkaProblem.map { "unreachable: \($0)" } ?? s.kafkaError.map { "error: \($0)" } ?? "ok"),
                              ("topics", s.topics.map(\.name).joined(separator: ", ")),
                              ("sessions", "\(publishers + viewers)" + (s.viewerPage.map { " (viewers listed in \($0.count) pages, one per report)" } ?? ""))]
                )
            }
            return Table(columns: columns, rows: rows)

        case .sessions:
            let rows = fleet.sessions.map { relay, session -> Row in
                let stale = fleet.isStale(relay, nowMilliseconds: now)
                let delay = session.liveDelayMilliseconds.map { Format.milliseconds(Double($0)) } ?? "—"
                let connected = Format.duration(milliseconds: now.saturatingSubtract(session.connectedAtMilliseconds))
                return Row(
                    cells: [session.role == .publisher ? "PUB" : "VIEW", session.id, session.topic, relay, session.remoteAddress,
                            connected, Format.bitrate(Double(session.bitrate)),
                            session.role == .viewer ? "\(session.skipped)" : "", session.role == .viewer ? delay : ""],
                    subject: .session(relay: relay, id: session.id, role: session.role, topic: session.topic),
                    stale: stale, paused: session.state == "paused",
                    details: [("session", session.id), ("role", session.role.rawValue), ("topic", session.topic),
                              ("relay", relay), ("remote", session.remoteAddress), ("user agent", session.userAgent),
                              ("connected", connected + " ago"),
                              ("bytes", Format.bytes(session.bytes)), ("bitrate", Format.bitrate(Double(session.bitrate))),
                              ("skipped", "\(session.skipped) fragments"), ("live delay", delay),
                              ("glass to glass", session.glassMilliseconds.map { Format.milliseconds(Double($0)) } ?? "—"),
                              ("state", session.state ?? "—")]
                )
            }
            return Table(columns: columns, rows: rows)

        case .topics:
            // Each topic's recordings, grouped once for all rows.
            let recordings = Dictionary(grouping: fleet.recordings?.recordings ?? [], by: \.topic)
            let rows = fleet.topics.map { t -> Row in
                Row(
                    cells: [t.name, t.paused ? "PAUSED" : (t.publishers > 0 ? "live" : "idle"), "\(t.publishers)", "\(t.viewers)",
                            Format.byteRate(t.inBytesPerSecond), Format.perSecond(t.inFragmentsPerSecond),
                            Format.byteRate(t.outBytesPerSecond), t.maxLag.map { "\($0)" } ?? "—", Format.milliseconds(t.writtenP50)],
                    subject: .topic(t.name, paused: t.paused), stale: false, paused: t.paused,
                    details: [("topic", t.name), ("state", t.paused ? "paused" : "running"), ("publishers", "\(t.publishers)"),
                              ("viewers", "\(t.viewers) on \(t.relays) relay(s)"),
                              ("in", "\(Format.byteRate(t.inBytesPerSecond)), \(Format.perSecond(t.inFragmentsPerSecond))"),
                              ("out", "\(Format.byteRate(t.outBytesPerSecond)), \(Format.perSecond(t.outFragmentsPerSecond))"),
                              ("high watermark", t.highWatermark.map { Format.count($0) } ?? "—"),
                              ("retained", t.retainedRecords.map { "\(Format.count($0)) records (rewind and download: recordings.html)" } ?? "—"),
                              ("recordings", recordingsLine((recordings[t.name] ?? []).map(\.session), list: fleet.recordings, now: now)),
                              ("worst lag", t.maxLag.map { "\($0) records" } ?? "—"),
                              ("glass to glass p50", Format.milliseconds(t.glassP50))]
                )
            }
            return Table(columns: columns, rows: rows)

        case .latency:
            var rows: [Row] = []
            for entry in fleet.sortedRelays {
                let relay = entry.status.relay
                for topic in entry.status.topics.sorted(by: { $0.name < $1.name }) {
                    func stage(_ s: LatencySummary.Stage) -> LatencySummary? { topic.latency.first { $0.stage == s } }
                    let history = fleet.latencyHistory["\(relay)/\(topic.name)"] ?? []
                    rows.append(Row(
                        cells: [relay, topic.name, topic.consumer.map { "\($0.lag)" } ?? "—",
                                Format.milliseconds(topic.consumer?.newestAgeMilliseconds.map(Double.init)),
                                Format.milliseconds(stage(.acknowledged)?.p50), Format.milliseconds(stage(.consumed)?.p50),
                                Format.milliseconds(stage(.written)?.p99), Format.milliseconds(stage(.glass)?.p50),
                                Format.sparkline(history, width: 10)],
                        subject: .relayTopic(relay: relay, topic: topic.name), stale: fleet.isStale(relay, nowMilliseconds: now),
                        paused: topic.paused,
                        details: [("relay", relay), ("topic", topic.name),
                                  ("position", topic.consumer.map { Format.count($0.position) } ?? "—"),
                                  ("high watermark", topic.consumer.map { Format.count($0.highWatermark) } ?? "—"),
                                  ("retained", topic.consumer.flatMap { c in c.lowWatermark.map { "offsets \(Format.count($0))–\(Format.count(c.highWatermark)) (\(Format.count(c.retainedRecords ?? 0)) records)" } } ?? "—"),
                                  ("lag", topic.consumer.map { "\($0.lag) records" } ?? "—"),
                                  ("recent", "p50 of \(Fleet.endToEndStages.first { stage($0) != nil }?.rawValue ?? "—"): "
                                      + Format.sparkline(history, width: 30))]
                            + LatencySummary.Stage.allCases.map { s in
                                (s.rawValue, stage(s).map { "p50 \(Format.milliseconds($0.p50))  p90 \(Format.milliseconds($0.p90))  p99 \(Format.milliseconds($0.p99))  max \(Format.milliseconds($0.max))  n=\($0.count)" } ?? "—")
                            }
                    ))
                }
            }
            return Table(columns: columns, rows: rows)

        case .recordings:
            let rows = (fleet.recordings?.recordings ?? []).map { recording -> Row in
                let session = recording.session
                let state = recordingState(session, nowMilliseconds: now)
                let started = Format.duration(milliseconds: now.saturatingSubtract(session.startedAtMilliseconds)) + " ago"
                let base = fleet.address(preferring: session.relay, nowMilliseconds: now)
                let topic = Self.percentEncoded(recording.topic)
                let links: [(String, String)] = base.map { base in
                    [("download", "\(base)/api/topics/\(topic)/recording.webm?session=\(Self.percentEncoded(session.id))"),
                     ("watch", "\(base)/watch.html?topic=\(topic)&at=\(Format.timestamp(milliseconds: session.startedAtMilliseconds, exact: true))")]
                } ?? [("download", "— (no relay reports an address)")]
                return Row(
                    cells: [recording.topic, started, Format.duration(milliseconds: session.durationMilliseconds),
                            Format.bytes(session.bytes), session.relay, state],
                    subject: .recording(topic: recording.topic, session: session.id), stale: false, paused: false,
                    details: [("topic", recording.topic), ("session", session.id), ("relay", session.relay),
                              ("started", Format.timestamp(milliseconds: session.startedAtMilliseconds) + " (\(started))"),
                              ("latest", Format.timestamp(milliseconds: session.endedAtMilliseconds)),
                              ("length", Format.duration(milliseconds: session.durationMilliseconds)),
                              ("size", "\(Format.bytes(session.bytes)) in \(Format.count(session.records)) records"),
                              ("offsets", "\(Format.count(session.firstOffset))–\(Format.count(session.lastOffset))"),
                              ("state", state + (session.complete ? "" : "; its beginning has left retention"))]
                        + links
                )
            }
            return Table(columns: columns, rows: rows)
        }
    }

    /// What became of a recorded session: `ended`, `live`, or `interrupted` (no end marker and
    /// nothing new for 10 s: its relay went away); `cut` when retention took its beginning.
    static func recordingState(_ session: RecordedSession, nowMilliseconds now: Int64) -> String {
        let state = session.ended ? "ended" : now.saturatingSubtract(session.endedAtMilliseconds) < 10_000 ? "live" : "interrupted"
        return session.complete ? state : state + ", cut"
    }

    /// A topic's line in its details: how many sessions Kafka holds of it.
    /// `list`: the recordings read (their newest ``RecordingList/recordings``, of `total`).
    static func recordingsLine(_ sessions: [RecordedSession], list: RecordingList?, now: Int64) -> String {
        guard let list else { return "not read yet (view 5 reads them)" }
        // The console holds the newest sessions only: say so when they are not all.
        let among = list.total > list.recordings.count ? " among the newest \(Format.count(Int64(list.recordings.count)))" : ""
        guard let newest = sessions.first else { return "none" + among + " in Kafka" }
        let bytes = sessions.reduce(Int64(0)) { $0.saturatingAdd($1.bytes) }
        return "\(sessions.count) session\(sessions.count == 1 ? "" : "s")\(among) in Kafka (\(Format.bytes(bytes))), the newest started "
            + Format.duration(milliseconds: now.saturatingSubtract(newest.startedAtMilliseconds)) + " ago (view 5)"
    }

    /// `text` for a URL's path or query: letters, digits and `-._~` as they are, the rest %XX.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// Rows whose text contains `filter` (case-insensitive), sorted by column `sortColumn`.
    public func filtered(_ filter: String, sortColumn: Int?, descending: Bool) -> [Row] {
        let needle = filter.lowercased()
        var result = needle.isEmpty ? rows : rows.filter { row in row.cells.contains { $0.lowercased().contains(needle) } }
        if let sortColumn, sortColumn < columns.count {
            result.sort { a, b in
                let x = a.cells[sortColumn], y = b.cells[sortColumn]
                let order = Self.naturalLess(x, y)
                return descending ? Self.naturalLess(y, x) : order
            }
        }
        return result
    }

    /// Numbers compare as numbers (`9 < 10`), the rest as text.
    static func naturalLess(_ a: String, _ b: String) -> Bool {
        if let x = leadingNumber(a), let y = leadingNumber(b), x != y { return x < y }
        return a.lowercased() < b.lowercased()
    }

    static func leadingNumber(_ s: String) -> Double? {
        let prefix = s.prefix { $0.isNumber || $0 == "." || $0 == "-" }
        return prefix.isEmpty ? nil : Double(prefix)
    }
}
