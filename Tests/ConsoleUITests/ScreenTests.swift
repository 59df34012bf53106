import ControlPlane
import Testing
@testable import ConsoleUI

@Suite("Screen layout")
struct ScreenTests {
    let now = Samples.now

    func render(_ state: ConsoleState, _ fleet: Fleet, width: Int = 80, height: Int = 24) -> Screen {
        Screen.render(state: state, fleet: fleet, connection: "kafka 127.0.0.1:9092", nowMilliseconds: now, width: width, height: height)
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60), (40, 8), (81, 25)])
    func everyLineFillsTheWidthExactly(width: Int, height: Int) {
        var state = ConsoleState(consoleID: "c")
        for view in ConsoleView.allCases {
            _ = state.handle(.character(Character("\(view.rawValue)")), fleet: Samples.fleet(), nowMilliseconds: now)
            let screen = render(state, Samples.fleet(), width: width, height: height)
            #expect(screen.lines.count == height)
            for line in screen.text { #expect(line.count == width, "view \(view) line \"\(line)\"") }
        }
    }

    @Test func recordingsViewListsWhatKafkaHoldsNewestFirst() {
        var fleet = Samples.fleet()
        var state = ConsoleState(consoleID: "c")
        _ = state.handle(.character("5"), fleet: fleet, nowMilliseconds: now)
        #expect(render(state, fleet).text[3].contains("Reading what Kafka holds…"), "before the first reading")
        fleet.recordingsProblem = "Local: All broker connections are down"
        #expect(render(state, fleet).text[3].contains("Cannot read the recordings: Local: All broker connections are down"))

        fleet.recordingsProblem = nil
        fleet.recordings = Samples.recordings
        let text = render(state, fleet).text
        #expect(text[1].contains("5 Recordings") && text[1].contains("2 in 2 topics"))
        #expect(text[2].contains("TOPIC") && text[2].contains("STARTED") && text[2].contains("STATE"))
        #expect(text[3].contains("cam") && text[3].contains("1m05s ago") && text[3].contains("1m04s") && text[3].contains("live"))
        #expect(text[4].contains("lobby") && text[4].contains("10m00s ago") && text[4].contains("ended, cut"))

        // Details: when, how much, and where to get it: from the relay it streamed through while
        // that relay reports, else from any relay that does.
        _ = state.handle(.enter, fleet: fleet, nowMilliseconds: now)
        let live = render(state, fleet, width: 120).text
        func line(_ label: String, in lines: [String]) -> String? {
            lines.first { $0.hasPrefix(" " + label + " ") }.map { String(String($0.dropFirst(label.count + 1)).drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
        }
        #expect(line("started", in: live) == "1970-01-01T00:15:35Z (1m05s ago)")
        #expect(line("download", in: live) == "http://127.0.0.1:8080/api/topics/cam/recording.webm?session=s-live")
        #expect(line("watch", in: live) == "http://127.0.0.1:8080/watch.html?topic=cam&at=1970-01-01T00:15:35.000Z")
        _ = state.handle(.escape, fleet: fleet, nowMilliseconds: now)
        _ = state.handle(.down, fleet: fleet, nowMilliseconds: now)
        _ = state.handle(.enter, fleet: fleet, nowMilliseconds: now)
        let old = render(state, fleet, width: 120).text
        #expect(line("download", in: old) == "http://127.0.0.1:8080/api/topics/lobby/recording.webm?session=s%2Fold",
                "from a relay that reports (its own is gone), the id escaped")
        #expect(line("state", in: old) == "ended, cut; its beginning has left retention")

        // At 80 columns the link goes on over the next line rather than being cut.
        let narrow = render(state, fleet).text
        let start = narrow.firstIndex { $0.hasPrefix(" download ") } ?? 0
        #expect(narrow[start + 1].hasPrefix(String(repeating: " ", count: 16)))
        #expect(String(narrow[start].dropFirst(16) + narrow[start + 1].dropFirst(16)).filter { $0 != " " }
                == "http://127.0.0.1:8080/api/topics/lobby/recording.webm?session=s%2Fold")

        // A recording is the past: pausing or switching is for live topics.
        _ = state.handle(.escape, fleet: fleet, nowMilliseconds: now)
        #expect(state.handle(.character("p"), fleet: fleet, nowMilliseconds: now).isEmpty)
        #expect(state.mode == .normal && state.statusIsError)

        // A topic's details say how many sessions Kafka holds of it.
        var topics = ConsoleState(consoleID: "c")
        _ = topics.handle(.character("3"), fleet: fleet, nowMilliseconds: now)
        _ = topics.handle(.enter, fleet: fleet, nowMilliseconds: now)
        #expect(render(topics, fleet, width: 120).text.contains { $0.contains("1 session in Kafka (9.1 MiB), the newest started 1m05s ago (view 5)") })
    }

    @Test func relaysViewAt80x24() {
        let screen = render(ConsoleState(consoleID: "c"), Samples.fleet())
        let text = screen.text
        #expect(text[0].contains("2 relays"))
        #expect(text[1].contains("1 Relays"))
        #expect(text[2].contains("RELAY"))
        #expect(text[3].contains("relay-a"))
        #expect(text[4].contains("relay-b"))
        #expect(text[3].contains("1h00m"))
        #expect(screen.lines[3].first?.style == .selected)
        #expect(text[23].contains("?:help"))
    }

    @Test func staleRelaysAreMarked() {
        var fleet = Samples.fleet(["relay-a"])
        fleet.apply(Samples.relay("relay-b", sentAt: now - 5000), receivedAtMilliseconds: now - 5000)
        let text = render(ConsoleState(consoleID: "c"), fleet).text
        #expect(text[0].contains("1 stale"))
        #expect(text.contains { $0.contains("relay-b") && $0.contains("stale") })
        fleet.expire(nowMilliseconds: now + 20_000)
        #expect(fleet.relays.isEmpty)
    }

    @Test func aRelaysKafkaErrorsShowWhileTheyLast() {
        var fleet = Samples.fleet(["relay-a"])
        var troubled = Samples.relay("relay-b")
        troubled.kafkaError = "127.0.0.1:39091/2: Connect to ipv4#127.0.0.1:39091 failed: Connection refused"
        fleet.apply(troubled, receivedAtMilliseconds: now)
        let text = render(ConsoleState(consoleID: "c"), fleet).text
        #expect(text[0].contains("1 with Kafka errors"))
        #expect(text.contains { $0.contains("relay-b") && $0.contains("kafka") })
        #expect(text.contains { $0.contains("relay-a") && $0.contains(" ok") })
        let row = Table.build(.relays, fleet: fleet, nowMilliseconds: now).rows.first { $0.subject == .relay("relay-b") }
        #expect(row?.details.contains { $0.0 == "kafka" && $0.1.hasPrefix("error: 127.0.0.1:39091/2") } == true)
        // The next report without the error: the row is ok again.
        fleet.apply(Samples.relay("relay-b"), receivedAtMilliseconds: now)
        #expect(!render(ConsoleState(consoleID: "c"), fleet).text[0].contains("Kafka errors"))
    }

    @Test func latencyViewShowsLagAndStages() {
        var state = ConsoleState(consoleID: "c")
        _ = state.handle(.character("4"), fleet: Samples.fleet(), nowMilliseconds: now)
        let text = render(state, Samples.fleet()).text
        let row = text.first { $0.contains("relay-a") && $0.contains("cam") } ?? ""
        #expect(row.contains(" 10 "), "lag 1000 - 990")
        #expect(row.contains("2.5 ms"))
        #expect(row.contains("4.2 ms"))
        #expect(row.contains("12 ms"))
    }

    @Test func aTinyTerminalGetsAMessageNotACrash() {
        let screen = render(ConsoleState(consoleID: "c"), Samples.fleet(), width: 20, height: 5)
        #expect(screen.text[0].hasPrefix("Terminal too small"))
        #expect(screen.lines.count == 5)
        #expect(render(ConsoleState(consoleID: "c"), Samples.fleet(), width: 0, height: 0).lines.count == 1)
    }

    @Test func emptyFleetSaysItIsWaiting() {
        let text = render(ConsoleState(consoleID: "c"), Fleet()).text
        #expect(text[3].contains("Waiting for relays"))
    }

    @Test func garbageOnTheStatusTopicIsIgnored() {
        #expect(ControlPlaneCodec.decodeStatus(Array("not json".utf8)) == nil)
        #expect(ControlPlaneCodec.decodeStatus(Array(#"{"relay":5}"#.utf8)) == nil)
        #expect(ControlPlaneCodec.decodeStatus([0xFF, 0x00, 0x12]) == nil)
        let status = Samples.relay("r")
        #expect(ControlPlaneCodec.decodeStatus(ControlPlaneCodec.encode(status)) == status)
        let ack = ControlMessage.ack(CommandAck(command: "c-1", relay: "r", ok: true, message: "ok", atMilliseconds: 1))
        #expect(ControlPlaneCodec.decodeControl(ControlPlaneCodec.encode(ack)) == ack)
        #expect(ControlPlaneCodec.decodeControl(Array(#"{"type":"nuke"}"#.utf8)) == nil)
    }

    @Test func lagIsHighWatermarkMinusPosition() {
        #expect(ConsumerLag.messages(highWatermark: 1000, position: 990) == 10)
        #expect(ConsumerLag.messages(highWatermark: 5, position: 9) == 0)
        #expect(ConsumerLag.messages(highWatermark: 5, position: -1001) == 5)
    }
}
