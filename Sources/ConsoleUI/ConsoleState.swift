import ControlPlane

/// What the console should do after a key.
public enum ConsoleAction: Equatable, Sendable {
    case quit
    /// Publish this command on the control topic.
    case send(ControlCommand)
}

/// The console's interaction state, free of I/O: view, selection, filter, sort, dialogs and the
/// status line. Keys go in through ``handle(_:fleet:nowMilliseconds:)``; actions come out.
public struct ConsoleState: Sendable {
    public enum Mode: Sendable, Equatable {
        case normal
        case help
        case detail
        /// Typing a filter after `/`.
        case filter
        /// Waiting for y/n on a command.
        case confirm(ControlCommand, question: String)
        /// Choosing the target topic of a switch.
        case pickTopic(ControlCommand, choices: [String], selected: Int)
    }

    public let consoleID: String
    public private(set) var view: ConsoleView = .relays
    public private(set) var mode: Mode = .normal
    public private(set) var filter = ""
    public private(set) var selection: [ConsoleView: Int] = [:]
    public private(set) var sortColumn: [ConsoleView: Int] = [:]
    public private(set) var sortDescending = false
    public private(set) var statusLine = "Press ? for help."
    public private(set) var statusIsError = false
    /// Commands sent and not yet acknowledged: id → (description, sent at).
    public private(set) var pending: [String: (description: String, sentAt: Int64)] = [:]
    /// How long to wait for an acknowledgement.
    public var commandTimeoutMilliseconds: Int64 = 5_000
    private var commandCounter = 0

    public init(consoleID: String) {
        self.consoleID = consoleID
    }

    /// The rows the current view shows, after filter and sort.
    public func visibleRows(fleet: Fleet, nowMilliseconds: Int64) -> [Table.Row] {
        Table.build(view, fleet: fleet, nowMilliseconds: nowMilliseconds)
            .filtered(filter, sortColumn: sortColumn[view], descending: sortDescending)
    }

    /// Index of the selected row, clamped to the rows shown.
    public func selectedIndex(rowCount: Int) -> Int {
        guard rowCount > 0 else { return 0 }
        return min(max(0, selection[view] ?? 0), rowCount - 1)
    }

    public mutating func setStatus(_ text: String, error: Bool = false) {
        statusLine = text
        statusIsError = error
    }

    // MARK: Keys

    public mutating func handle(_ key: Key, fleet: Fleet, nowMilliseconds now: Int64) -> [ConsoleAction] {
        switch mode {
        case .help:
            if key == .character("q") { return [.quit] }
            if key != .resize { mode = .normal }
            return []
        case .detail:
            if key == .escape || key == .enter || key == .character("q") || key == .left { mode = .normal }
            return []
        case .filter:
            switch key {
            case .enter: mode = .normal
            case .escape: filter = ""; mode = .normal
            case .backspace: if !filter.isEmpty { filter.removeLast() }
            case .character(let c) where !c.isNewline: filter.append(c)
            default: break
            }
            selection[view] = 0
            return []
        case .confirm(let command, _):
            switch key {
            case .character("y"), .character("Y"):
                mode = .normal
                return [send(command, now: now)]
            case .resize:
                return []
            default:
                mode = .normal
                setStatus("Cancelled.")
                return []
            }
        case .pickTopic(var command, let choices, let selected):
            switch key {
            case .up, .character("k"): mode = .pickTopic(command, choices: choices, selected: max(0, selected - 1))
            case .down, .character("j"): mode = .pickTopic(command, choices: choices, selected: min(choices.count - 1, selected + 1))
            case .enter:
                guard choices.indices.contains(selected) else { mode = .normal; return [] }
                command.to = choices[selected]
                let who = command.viewer.map { "viewer \($0)" } ?? "every viewer of \(command.topic ?? "?")"
                mode = .confirm(command, question: "Move \(who) to \(choices[selected])? (y/n)")
            case .escape, .character("q"):
                mode = .normal
                setStatus("Cancelled.")
            default: break
            }
            return []
        case .normal:
            return handleNormal(key, fleet: fleet, now: now)
        }
    }

    private mutating func handleNormal(_ key: Key, fleet: Fleet, now: Int64) -> [ConsoleAction] {
        let rows = visibleRows(fleet: fleet, nowMilliseconds: now)
        let index = selectedIndex(rowCount: rows.count)
        let selected = rows.indices.contains(index) ? rows[index] : nil
        switch key {
        case .character("q"): return [.quit]
        case .character("?"), .character("h"): mode = .help
        case .tab, .right: switchView(to: ConsoleView(rawValue: view.rawValue % ConsoleView.allCases.count + 1) ?? .relays)
        case .backTab, .left:
            switchView(to: ConsoleView(rawValue: (view.rawValue + ConsoleView.allCases.count - 2) % ConsoleView.allCases.count + 1) ?? .relays)
        case .character(let c) where c.isNumber:
            if let number = c.wholeNumberValue, let target = ConsoleView(rawValue: number) { switchView(to: target) }
        case .up, .character("k"): selection[view] = max(0, index - 1)
        case .down, .character("j"): selection[view] = min(max(0, rows.count - 1), index + 1)
        case .pageUp: selection[view] = max(0, index - 10)
        case .pageDown: selection[view] = min(max(0, rows.count - 1), index + 10)
        case .home, .character("g"): selection[view] = 0
        case .end, .character("G"): selection[view] = max(0, rows.count - 1)
        case .enter: if selected != nil { mode = .detail }
        case .character("/"): mode = .filter
        case .escape:
            if !filter.isEmpty { filter = ""; setStatus("Filter cleared.") }
        case .character("s"):
            let columns = Table.columns(for: view).count
            let current = sortColumn[view]
            if let current, current + 1 < columns { sortColumn[view] = current + 1 } else if current == nil { sortColumn[view] = 0 } else { sortColumn[view] = nil }
            let name = sortColumn[view].map { Table.columns(for: view)[$0].title } ?? "none"
            setStatus("Sorted by \(name).")
        case .character("S"):
            sortDescending.toggle()
            setStatus(sortDescending ? "Sorting descending." : "Sorting ascending.")
        case .character("x"), .delete:
            // Movement keys never act: kicking has its own key (htop's and k9s's habit).
            guard case .session(let relay, let id, let role, let topic)? = selected?.subject else {
                setStatus("Select a viewer in view 2 (Sessions) to kick it.", error: true)
                break
            }
            guard role == .viewer else {
                setStatus("Only viewers can be kicked; \(id) is a publisher.", error: true)
                break
            }
            let command = makeCommand(.kick, now: now, topic: topic, viewer: id, relay: relay)
            mode = .confirm(command, question: "Kick viewer \(id) of \(topic) on \(relay)? (y/n)")
        case .character("p"):
            guard let topic = selected?.subject.topicName else {
                setStatus("Select a topic (view 3) or a session to pause its topic.", error: true)
                break
            }
            let paused = fleet.topics.first { $0.name == topic }?.paused ?? false
            if paused {
                return [send(makeCommand(.resume, now: now, topic: topic), now: now)]
            }
            mode = .confirm(makeCommand(.pause, now: now, topic: topic), question: "Pause \(topic) on every relay? (y/n)")
        case .character("t"):
            guard let subject = selected?.subject, let topic = subject.topicName else {
                setStatus("Select a viewer (view 2) or a topic (view 3) to switch.", error: true)
                break
            }
            var command = makeCommand(.switch, now: now, topic: topic)
            if case .session(let relay, let id, let role, _) = subject {
                guard role == .viewer else {
                    setStatus("Only viewers can be switched; \(id) is a publisher.", error: true)
                    break
                }
                command.viewer = id
                command.relay = relay
            }
            let choices = fleet.topicNames.filter { $0 != topic }
            guard !choices.isEmpty else {
                setStatus("No other topic to switch to.", error: true)
                break
            }
            mode = .pickTopic(command, choices: choices, selected: 0)
        default:
            break
        }
        return []
    }

    private mutating func switchView(to target: ConsoleView) {
        view = target
        filter = ""
    }

    private mutating func makeCommand(_ action: ControlCommand.Action, now: Int64, topic: String? = nil, viewer: String? = nil,
                                      relay: String? = nil) -> ControlCommand {
        commandCounter += 1
        return ControlCommand(id: "\(consoleID)-\(commandCounter)", action: action, topic: topic, viewer: viewer,
                              relay: relay, issuedAtMilliseconds: now, issuedBy: consoleID)
    }

    private mutating func send(_ command: ControlCommand, now: Int64) -> ConsoleAction {
        let description: String = switch command.action {
        case .kick: "kick \(command.viewer ?? "?")"
        case .pause: "pause \(command.topic ?? "?")"
        case .resume: "resume \(command.topic ?? "?")"
        case .switch: "switch \(command.viewer ?? command.topic ?? "?") to \(command.to ?? "?")"
        }
        pending[command.id] = (description, now)
        setStatus("Sent: \(description)…")
        return .send(command)
    }

    // MARK: Acknowledgements

    /// A relay answered a command.
    public mutating func receive(_ ack: CommandAck) {
        guard pending[ack.command] != nil else { return }
        if ack.ok { pending[ack.command] = nil }
        setStatus("\(ack.relay): \(ack.message)", error: !ack.ok)
    }

    /// Reports commands nobody acknowledged in time.
    public mutating func tick(nowMilliseconds now: Int64) {
        for (id, entry) in pending where now - entry.sentAt > commandTimeoutMilliseconds {
            pending[id] = nil
            setStatus("No relay acknowledged \(entry.description) within \(commandTimeoutMilliseconds / 1000) s.", error: true)
        }
    }
}

extension Table.Subject {
    var isSession: Bool { if case .session = self { true } else { false } }

    /// The topic this row is about, if any.
    var topicName: String? {
        switch self {
        case .relay: nil
        case .session(_, _, _, let topic): topic
        case .topic(let name, _): name
        case .relayTopic(_, let topic): topic
        // A recording is the past: pause and switch act on live topics, from views 2 and 3.
        case .recording: nil
        }
    }
}
