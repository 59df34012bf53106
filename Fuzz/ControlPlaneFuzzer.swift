import ConsoleUI
import ControlPlane

// libFuzzer target: a record on the control plane's topics, as the console reads it.
//
// Input: the record's value, as it arrives from Kafka (any relay, or anyone who can produce to
// the topic, wrote it). A status document goes where `kvb-console` takes it: into the fleet
// (with the console's receivedAt rule), every view rendered at 80×24 and 40×8, with sorting,
// details and the topic picker, at a `now` close to the document's clock and at one drawn from
// the input, then `expire`. An acknowledgement goes through the console state to its status
// line. Anything that decodes must also encode and decode back to itself (`kvb-console status`
// re-encodes what it read). A crash or trap anywhere here is a finding.
//
// Built and run by `make fuzz` (scripts/fuzz.sh).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let hash = fnv1a(bytes)
    if let status = ControlPlaneCodec.decodeStatus(bytes) {
        check(ControlPlaneCodec.decodeStatus(ControlPlaneCodec.encode(status)) == status, "status does not survive encode/decode")
        // Near the relay's clock (fresh, stale or dropped), and anywhere at all.
        for now in [status.sentAtMilliseconds &+ Int64(hash % 20_000), Int64(bitPattern: hash)] {
            show(status, nowMilliseconds: now, hash: hash)
        }
    }
    if let message = ControlPlaneCodec.decodeControl(bytes) {
        check(ControlPlaneCodec.decodeControl(ControlPlaneCodec.encode(message)) == message, "control message does not survive encode/decode")
        if case .ack(let ack) = message { show(ack) }
    }
    return 0
}

let sizes = [(width: 80, height: 24), (width: 40, height: 8)]

/// The console's path for a status document at `now`.
func show(_ status: RelayStatus, nowMilliseconds now: Int64, hash: UInt64) {
    var fleet = Fleet()
    // As FleetLink does: an old document counts from when it was sent.
    let receivedAt = min(now, status.sentAtMilliseconds)
    fleet.apply(status, receivedAtMilliseconds: receivedAt)
    // A second relay reporting the same topics (aggregates add up), and the first one again
    // (latency history grows).
    var twin = status
    twin.relay += "'"
    fleet.apply(twin, receivedAtMilliseconds: receivedAt)
    fleet.apply(status, receivedAtMilliseconds: receivedAt)
    _ = fleet.topics
    _ = fleet.sessions
    _ = fleet.topicNames

    for view in ConsoleView.allCases {
        var state = ConsoleState(consoleID: "fuzz")
        press(&state, .character(Character("\(view.rawValue)")), fleet, now)
        // Sort by a column drawn from the input, in either order.
        for _ in 0..<Int((hash >> 8) % 10) { press(&state, .character("s"), fleet, now) }
        if hash & 1 != 0 { press(&state, .character("S"), fleet, now) }
        render(state, fleet, now)
        press(&state, .end, fleet, now)
        press(&state, .enter, fleet, now)  // details of the last row
        render(state, fleet, now)
        press(&state, .escape, fleet, now)
        press(&state, .character("t"), fleet, now)  // the topic picker, when there is something to pick
        render(state, fleet, now)
    }
    fleet.expire(nowMilliseconds: now)
    render(ConsoleState(consoleID: "fuzz"), fleet, now)
}

/// An acknowledgement of a command this console sent, on its status line.
func show(_ ack: CommandAck) {
    var state = ConsoleState(consoleID: "fuzz")
    let now = ack.atMilliseconds
    // Pause "cam" from the Topics view and confirm: the command "fuzz-1" is then pending.
    for key in [Key.character("3"), .character("p"), .character("y")] { press(&state, key, sampleFleet, now) }
    var answer = ack
    answer.command = "fuzz-1"
    state.receive(answer)
    state.tick(nowMilliseconds: now)
    render(state, sampleFleet, now)
}

func press(_ state: inout ConsoleState, _ key: Key, _ fleet: Fleet, _ now: Int64) {
    _ = state.handle(key, fleet: fleet, nowMilliseconds: now)
}

func render(_ state: ConsoleState, _ fleet: Fleet, _ now: Int64) {
    for size in sizes {
        let screen = Screen.render(state: state, fleet: fleet, connection: "fuzz", nowMilliseconds: now,
                                   width: size.width, height: size.height)
        check(screen.lines.count == size.height, "\(screen.lines.count) lines on a screen \(size.height) high")
    }
}

/// One relay with one topic, for acknowledgements to answer a command about.
let sampleFleet: Fleet = {
    var fleet = Fleet()
    let topic = TopicStatus(name: "cam", publishers: 1)
    fleet.apply(RelayStatus(relay: "r1", address: "http://127.0.0.1:8080", startedAtMilliseconds: 0, sentAtMilliseconds: 0,
                            sessions: [], topics: [topic]),
                receivedAtMilliseconds: 0)
    return fleet
}()

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("control plane contract broken: \(message())") }
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return hash
}
