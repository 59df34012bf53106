import ControlPlane
import Foundation
import Testing
@testable import ConsoleUI

/// Status documents that crashed the console under the control-plane fuzzer (`make fuzz`), kept
/// in FuzzRegressions/ and replayed the way Fuzz/ControlPlaneFuzzer.swift runs them: into the
/// fleet as FleetLink takes them, then every view rendered, with sorting, details and the topic
/// picker, at the same clocks. Each must render whole screens.
@Suite("Control-plane fuzz regressions")
struct FuzzRegressionTests {
    static let folder = Bundle.module.url(forResource: "FuzzRegressions", withExtension: nil)
    static let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder?.path ?? "")) ?? []).sorted()

    @Test func regressionsArePresent() {
        #expect(!Self.names.isEmpty)
    }

    @Test(arguments: names)
    func replayRendersWholeScreens(name: String) throws {
        let bytes = Array(try Data(contentsOf: #require(Self.folder).appendingPathComponent(name)))
        let status = try #require(ControlPlaneCodec.decodeStatus(bytes), "\(name) no longer decodes")
        let hash = fnv1a(bytes)
        for now in [status.sentAtMilliseconds &+ Int64(hash % 20_000), Int64(bitPattern: hash), .min, .max] {
            var fleet = Fleet()
            let receivedAt = min(now, status.sentAtMilliseconds)
            var twin = status
            twin.relay += "'"
            for report in [status, twin, status] { fleet.apply(report, receivedAtMilliseconds: receivedAt) }
            #expect(fleet.relays.count == 2)

            for view in ConsoleView.allCases {
                var state = ConsoleState(consoleID: "fuzz")
                var keys: [Key] = [.character(Character("\(view.rawValue)"))]
                keys += Array(repeating: .character("s"), count: Int((hash >> 8) % 10))
                if hash & 1 != 0 { keys.append(.character("S")) }
                for step in [keys, [.end, .enter], [.escape, .character("t")]] {
                    for key in step { _ = state.handle(key, fleet: fleet, nowMilliseconds: now) }
                    for (width, height) in [(80, 24), (40, 8)] {
                        let screen = Screen.render(state: state, fleet: fleet, connection: "fuzz", nowMilliseconds: now,
                                                   width: width, height: height)
                        #expect(screen.lines.count == height)
                        for line in screen.text { #expect(line.count == width, "\(name), view \(view): \"\(line)\"") }
                    }
                }
            }
            fleet.expire(nowMilliseconds: now)
        }
    }

    /// The fuzzer's hash of its input, from which it draws `now` and the sort keys.
    func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }
}
