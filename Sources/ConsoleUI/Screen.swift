import ControlPlane

/// How a piece of text is drawn.
public enum TextStyle: Sendable, Equatable {
    case normal, title, tab, activeTab, header, selected, stale, paused, ok, error, dim, dialog
}

/// A run of text in one style.
public struct Span: Sendable, Equatable {
    public var text: String
    public var style: TextStyle

    public init(_ text: String, _ style: TextStyle = .normal) {
        self.text = text
        self.style = style
    }
}

/// The whole screen as lines of styled spans, each line exactly `width` columns. Pure: the
/// ncurses layer only paints it, and tests read it.
public struct Screen: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var lines: [[Span]]

    /// The screen as plain text, one string per line.
    public var text: [String] { lines.map { $0.map(\.text).joined() } }

    public static let minimumWidth = 40
    public static let minimumHeight = 8

    /// Lays out the console for a terminal of `width` × `height`.
    public static func render(state: ConsoleState, fleet: Fleet, connection: String, nowMilliseconds now: Int64,
                              width: Int, height: Int) -> Screen {
        var screen = Screen(width: width, height: height, lines: [])
        guard width >= minimumWidth, height >= minimumHeight else {
            let message = "Terminal too small (\(width)×\(height)); need \(minimumWidth)×\(minimumHeight)."
            screen.lines = (0..<max(1, height)).map { $0 == 0 ? [Span(Format.fit(message, max(1, width)), .error)] : [Span(String(repeating: " ", count: max(1, width)))] }
            return screen
        }

        // Title bar.
        let relays = fleet.relays.count
        let stale = fleet.relays.keys.filter { fleet.isStale($0, nowMilliseconds: now) }.count
        let sessions = fleet.sessions.count
        let troubled = fleet.relays.values.filter { $0.status.kafkaProblem != nil || $0.status.kafkaError != nil }.count
        let notes = [stale > 0 ? "\(stale) stale" : nil, troubled > 0 ? "\(troubled) with Kafka errors" : nil].compactMap { $0 }
        let summary = " kvb console │ \(relays) relay\(relays == 1 ? "" : "s")\(notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))") │ \(sessions) session\(sessions == 1 ? "" : "s") │ \(fleet.topicNames.count) topics │ \(connection)"
        screen.lines.append([Span(Format.fit(summary, width), .title)])

        // Tabs.
        var tabs: [Span] = []
        var used = 0
        for view in ConsoleView.allCases {
            let label = " \(view.rawValue) \(view.title) "
            tabs.append(Span(label, view == state.view ? .activeTab : .tab))
            used += label.count
        }
        let filterNote = state.filter.isEmpty ? (state.view == .recordings ? recordingsNote(fleet) : "") : " filter: \(state.filter) "
        let rest = max(0, width - used)
        tabs.append(Span(Format.fit(filterNote, rest, .right), .dim))
        screen.lines.append(clip(tabs, width))

        let bodyHeight = height - 4  // title, tabs, header, status
        let table = Table.build(state.view, fleet: fleet, nowMilliseconds: now)
        let rows = table.filtered(state.filter, sortColumn: state.sortColumn[state.view], descending: state.sortDescending)
        let selected = state.selectedIndex(rowCount: rows.count)
        let widths = columnWidths(table.columns, total: width)

        switch state.mode {
        case .help:
            screen.lines.append([Span(Format.fit(" Keys", width), .header)])
            screen.lines += helpLines.prefix(bodyHeight).map { [Span(Format.fit($0, width))] }
        case .detail:
            let row = rows.indices.contains(selected) ? rows[selected] : nil
            screen.lines.append([Span(Format.fit(" Details (Esc to go back)", width), .header)])
            let labelWidth = min(16, width / 3)
            // Long values (links, user agents) go on over the next lines rather than being cut.
            var lines: [[Span]] = []
            for (label, value) in row?.details ?? [] {
                for (index, piece) in wrapped(value, width - labelWidth).enumerated() {
                    lines.append([Span(Format.fit(index == 0 ? " " + label : "", labelWidth), .dim),
                                  Span(Format.fit(piece, width - labelWidth))])
                }
            }
            screen.lines += lines.prefix(bodyHeight)
        case .pickTopic(_, let choices, let choice):
            screen.lines.append([Span(Format.fit(" Switch to which topic? (↑/↓, Enter, Esc)", width), .header)])
            let window = scrollWindow(count: choices.count, selected: choice, height: bodyHeight)
            for index in window {
                screen.lines.append([Span(Format.fit("  " + choices[index], width), index == choice ? .selected : .normal)])
            }
        default:
            screen.lines.append([Span(Format.fit(cells(table.columns.map(\.title), widths, table.columns), width), .header)])
            if rows.isEmpty {
                let empty = state.filter.isEmpty ? emptyMessage(state.view, fleet: fleet) : "Nothing matches \"\(state.filter)\"."
                screen.lines.append([Span(Format.fit(" " + empty, width), .dim)])
            }
            for index in scrollWindow(count: rows.count, selected: selected, height: bodyHeight) {
                let row = rows[index]
                let style: TextStyle = index == selected ? .selected : row.stale ? .stale : row.paused ? .paused : .normal
                screen.lines.append([Span(Format.fit(cells(row.cells, widths, table.columns), width), style)])
            }
        }

        // Fill, then the status line.
        while screen.lines.count < height - 1 { screen.lines.append([Span(String(repeating: " ", count: width))]) }
        screen.lines = Array(screen.lines.prefix(height - 1))
        screen.lines.append(statusLine(state: state, width: width))
        return screen
    }

    static let helpLines = [
        "  Tab / Shift-Tab, ←/→, 1-5   switch view: 1 Relays 2 Sessions 3 Topics 4 Lag & latency 5 Recordings",
        "  ↑/↓, j/k, PgUp/PgDn, g/G    move (moving never acts on anything)",
        "  Enter                       details of the selected row; Esc goes back",
        "  /                           filter rows (Enter keeps it, Esc clears it)",
        "  s / S                       sort by the next column / reverse the order",
        "  x / Delete                  kick the selected viewer (asks first)",
        "  p                           pause the selected topic on every relay (asks first); p again resumes",
        "  t                           switch the selected viewer, or every viewer of a topic, to another topic",
        "  ?                           this help (any key closes it)",
        "  q                           quit",
        "",
        "  Stale relays (no report for 3 s) are shown dimmed, and dropped after 15 s.",
        "  Recordings: the sessions Kafka still holds, newest first; Enter shows their download link.",
    ]

    static func emptyMessage(_ view: ConsoleView, fleet: Fleet) -> String {
        // Recordings are read from Kafka itself: they need no relay.
        if view == .recordings {
            guard let list = fleet.recordings else { return fleet.recordingsProblem.map { "Cannot read the recordings: \($0)" } ?? "Reading what Kafka holds…" }
            return list.pendingTopics.isEmpty ? "Kafka holds no recorded sessions." : "Reading what Kafka holds of \(list.pendingTopics.count) topic(s)…"
        }
        if fleet.relays.isEmpty { return "Waiting for relays to report on the status topic…" }
        switch view {
        case .relays: return "No relays."
        case .sessions: return "No publishers or viewers connected."
        case .topics, .latency: return "No topics in use."
        case .recordings: return ""
        }
    }

    /// The Recordings view's note beside the tabs: how many sessions, and what is still being read.
    static func recordingsNote(_ fleet: Fleet) -> String {
        if let problem = fleet.recordingsProblem { return " Kafka: \(problem) " }
        guard let list = fleet.recordings else { return "" }
        let pending = list.pendingTopics.isEmpty ? "" : ", reading \(list.pendingTopics.count) topic(s)…"
        return " \(list.total) in \(list.topics) topic\(list.topics == 1 ? "" : "s")\(pending) "
    }

    static func statusLine(state: ConsoleState, width: Int) -> [Span] {
        switch state.mode {
        case .confirm(_, let question):
            return [Span(Format.fit(" " + question, width), .dialog)]
        case .filter:
            return [Span(Format.fit(" /" + state.filter + "▏  (Enter to keep, Esc to clear)", width), .dialog)]
        default:
            let hints = " ?:help /:filter s:sort x:kick p:pause t:switch q:quit "
            let message = " " + state.statusLine
            // Key hints only where the message leaves room for all of them.
            let shownHints = message.count + hints.count <= width ? hints : ""
            return [Span(Format.fit(message, width - shownHints.count), state.statusIsError ? .error : .ok),
                    Span(shownHints, .dim)]
        }
    }

    /// `text` in pieces of at most `width` characters (one empty piece for empty text).
    static func wrapped(_ text: String, _ width: Int) -> [String] {
        guard width > 0, text.count > width else { return [text] }
        var pieces: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            pieces.append(String(rest.prefix(width)))
            rest = rest.dropFirst(width)
        }
        return pieces
    }

    /// Which rows fit, keeping the selection visible.
    static func scrollWindow(count: Int, selected: Int, height: Int) -> Range<Int> {
        guard count > 0, height > 0 else { return 0..<0 }
        let first = min(max(0, selected - height + 1), max(0, count - height))
        let start = selected < first ? selected : first
        return start..<min(count, start + height)
    }

    /// Column widths: minimums first, then flexible columns share the rest.
    static func columnWidths(_ columns: [Table.Column], total: Int) -> [Int] {
        var widths = columns.map(\.width)
        let gaps = columns.count  // one leading space per column
        var spare = total - widths.reduce(0, +) - gaps
        let flexible = columns.indices.filter { columns[$0].flexible }
        if spare > 0, !flexible.isEmpty {
            for (n, index) in flexible.enumerated() {
                let share = spare / (flexible.count - n)
                widths[index] += share
                spare -= share
            }
        }
        // Too narrow: shrink flexible columns, then drop columns from the right.
        while widths.reduce(0, +) + gaps > total {
            if let index = flexible.filter({ widths[$0] > 4 }).max(by: { widths[$0] < widths[$1] }) {
                widths[index] -= 1
            } else if let last = widths.lastIndex(where: { $0 > 0 }) {
                widths[last] = 0
            } else {
                break
            }
        }
        return widths
    }

    static func cells(_ values: [String], _ widths: [Int], _ columns: [Table.Column]) -> String {
        var line = ""
        for (index, value) in values.enumerated() where index < widths.count && widths[index] > 0 {
            line += " " + Format.fit(value, widths[index], columns[index].alignment)
        }
        let total = widths.reduce(0, +) + widths.filter { $0 > 0 }.count
        return line + String(repeating: " ", count: max(0, total - line.count))
    }

    static func clip(_ spans: [Span], _ width: Int) -> [Span] {
        var out: [Span] = []
        var used = 0
        for span in spans where used < width {
            let room = width - used
            let text = span.text.count > room ? String(span.text.prefix(room)) : span.text
            out.append(Span(text, span.style))
            used += text.count
        }
        if used < width { out.append(Span(String(repeating: " ", count: width - used))) }
        return out
    }
}
