import ControlPlane
import Testing
@testable import ConsoleUI

@Suite("Console keys")
struct ConsoleStateTests {
    let fleet = Samples.fleet()
    let now = Samples.now

    func press(_ keys: [Key], _ state: inout ConsoleState) -> [ConsoleAction] {
        keys.flatMap { state.handle($0, fleet: fleet, nowMilliseconds: now) }
    }

    @Test func tabAndNumbersSwitchViews() {
        var state = ConsoleState(consoleID: "c")
        #expect(state.view == .relays)
        _ = press([.tab], &state)
        #expect(state.view == .sessions)
        _ = press([.character("4")], &state)
        #expect(state.view == .latency)
        _ = press([.tab], &state)
        #expect(state.view == .recordings)
        _ = press([.tab], &state)
        #expect(state.view == .relays)
        _ = press([.backTab], &state)
        #expect(state.view == .recordings)
        _ = press([.character("5"), .character("6")], &state)
        #expect(state.view == .recordings, "no view 6")
    }

    @Test func kickingAViewerAsksFirstThenSendsTheCommand() throws {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("2"), .down], &state)  // row 0 is relay-a's publisher, row 1 its viewer v-1
        #expect(press([.character("x")], &state).isEmpty)
        guard case .confirm(_, let question) = state.mode else { Issue.record("no confirmation"); return }
        #expect(question.contains("Kick viewer v-1"))
        let actions = press([.character("y")], &state)
        guard case .send(let command)? = actions.first else { Issue.record("nothing sent"); return }
        #expect(command.action == .kick)
        #expect(command.viewer == "v-1")
        #expect(command.relay == "relay-a")
        #expect(state.pending[command.id] != nil)

        state.receive(CommandAck(command: command.id, relay: "relay-a", ok: true, message: "kicked v-1", atMilliseconds: now))
        #expect(state.statusLine == "relay-a: kicked v-1")
        #expect(state.pending.isEmpty)
    }

    @Test func anythingButYesCancels() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("2"), .down, .delete, .character("n")], &state)
        #expect(state.mode == .normal)
        #expect(state.statusLine == "Cancelled.")
    }

    @Test func publishersCannotBeKicked() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("2"), .character("x")], &state)
        #expect(state.mode == .normal)
        #expect(state.statusIsError)
    }

    @Test func movementKeysNeverAct() {
        var state = ConsoleState(consoleID: "c")
        // On a viewer row, k moves up like everywhere else: nothing is asked, nothing is sent.
        _ = press([.character("2"), .down], &state)  // row 1: viewer v-1
        for key: Key in [.character("k"), .character("j"), .up, .down, .character("g"), .character("G"), .pageUp, .pageDown, .home, .end] {
            #expect(press([key], &state).isEmpty)
            #expect(state.mode == .normal)
        }
        _ = press([.character("g"), .down, .character("k")], &state)
        #expect(state.selection[.sessions] == 0)
        #expect(state.mode == .normal)
    }

    @Test func pauseAsksAndResumeDoesNot() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("3"), .character("p")], &state)
        guard case .confirm(let command, _) = state.mode else { Issue.record("no confirmation"); return }
        #expect(command.action == .pause)
        #expect(command.topic == "cam")

        var paused = Fleet()
        paused.apply(Samples.relay("relay-a", paused: true), receivedAtMilliseconds: now)
        var resuming = ConsoleState(consoleID: "c")
        _ = resuming.handle(.character("3"), fleet: paused, nowMilliseconds: now)
        let actions = resuming.handle(.character("p"), fleet: paused, nowMilliseconds: now)
        guard case .send(let resume)? = actions.first else { Issue.record("resume not sent"); return }
        #expect(resume.action == .resume)
    }

    @Test func switchPicksATargetTopicThenConfirms() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("3"), .character("t")], &state)
        guard case .pickTopic(_, let choices, _) = state.mode else { Issue.record("no picker"); return }
        #expect(choices == ["lobby"])
        _ = press([.enter], &state)
        let actions = press([.character("y")], &state)
        guard case .send(let command)? = actions.first else { Issue.record("nothing sent"); return }
        #expect(command.action == .switch)
        #expect(command.topic == "cam")
        #expect(command.to == "lobby")
        #expect(command.viewer == nil)
    }

    @Test func filterNarrowsRowsAndEscapeClearsIt() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("2"), .character("/")] + "v-2".map { .character($0) } + [.enter], &state)
        #expect(state.filter == "v-2")
        #expect(state.visibleRows(fleet: fleet, nowMilliseconds: now).count == 2)  // v-2 on each relay
        _ = press([.escape], &state)
        #expect(state.visibleRows(fleet: fleet, nowMilliseconds: now).count == 6)
    }

    @Test func sortCyclesColumns() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("s")], &state)
        #expect(state.statusLine == "Sorted by RELAY.")
        _ = press([.character("S")], &state)
        #expect(state.visibleRows(fleet: fleet, nowMilliseconds: now).first?.cells.first == "relay-b")
    }

    @Test func unacknowledgedCommandsTimeOut() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("3"), .character("p"), .character("y")], &state)
        state.tick(nowMilliseconds: now + 6_000)
        #expect(state.statusIsError)
        #expect(state.statusLine.contains("No relay acknowledged pause cam"))
    }

    @Test func quitAndHelp() {
        var state = ConsoleState(consoleID: "c")
        _ = press([.character("?")], &state)
        #expect(state.mode == .help)
        _ = press([.character("x")], &state)
        #expect(state.mode == .normal)
        #expect(press([.character("q")], &state) == [.quit])
    }
}
