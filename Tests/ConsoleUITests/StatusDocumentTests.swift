import ControlPlane
import Foundation
import Testing
@testable import ConsoleUI

/// The status document across versions: the console reads documents of relays older and newer
/// than itself, so a latency stage it does not know must not cost it the whole relay.
@Suite("Status documents")
struct StatusDocumentTests {
    let now = Samples.now

    @Test func theGlassStageRoundTrips() throws {
        var status = Samples.relay("relay-a")
        status.topics[0].latency.append(LatencySummary(stage: .glass, count: 300, p50: 205, p90: 250, p99: 290, max: 498))
        status.sessions[1].glassMilliseconds = 212
        let decoded = try #require(ControlPlaneCodec.decodeStatus(ControlPlaneCodec.encode(status)))
        #expect(decoded == status)
        let json = String(decoding: ControlPlaneCodec.encode(status), as: UTF8.self)
        #expect(json.contains(#""stage":"glass""#))
    }

    @Test func anUnknownLatencyStageIsLeftOutNotFatal() throws {
        let topic = #"""
            {"name":"cam","paused":false,"publishers":1,"viewers":2,"inFragmentsPerSecond":70,"inBytesPerSecond":1,
             "outFragmentsPerSecond":140,"outBytesPerSecond":2,
             "latency":[{"stage":"acknowledged","count":70,"p50":2.5,"p90":4,"p99":6,"max":9},
                        {"stage":"teleported","count":1,"p50":1,"p90":1,"p99":1,"max":1},
                        {"stage":"glass","count":30,"p50":205,"p90":250,"p99":290,"max":498}]}
            """#
        let decoded = try JSONDecoder().decode(TopicStatus.self, from: Data(topic.utf8))
        #expect(decoded.latency.map(\.stage) == [.acknowledged, .glass])
        #expect(decoded.latency.last?.p50 == 205)
    }

    @Test func aLatencyEntryWithoutAStageIsStillAnError() {
        let topic = #"""
            {"name":"cam","paused":false,"publishers":1,"viewers":2,"inFragmentsPerSecond":0,"inBytesPerSecond":0,
             "outFragmentsPerSecond":0,"outBytesPerSecond":0,"latency":[{"count":1}]}
            """#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(TopicStatus.self, from: Data(topic.utf8)) }
    }

    @Test func theLatencyViewShowsGlassToGlassWhereTheStreamCarriesIt() {
        var withGlass = Samples.relay("relay-a")
        withGlass.topics[0].latency.append(LatencySummary(stage: .glass, count: 300, p50: 205, p90: 250, p99: 290, max: 498))
        var fleet = Fleet()
        fleet.apply(withGlass, receivedAtMilliseconds: now)
        fleet.apply(Samples.relay("relay-b"), receivedAtMilliseconds: now)
        var state = ConsoleState(consoleID: "c")
        _ = state.handle(.character("4"), fleet: fleet, nowMilliseconds: now)
        let text = Screen.render(state: state, fleet: fleet, connection: "kafka", nowMilliseconds: now, width: 120, height: 30).text
        let header = text.first { $0.contains("GLASS") } ?? ""
        let glassColumn = header.range(of: "GLASS")
        #expect(glassColumn != nil, "the latency view has a GLASS column: \(header)")
        let rowA = text.first { $0.contains("relay-a") && $0.contains("cam") } ?? ""
        let rowB = text.first { $0.contains("relay-b") && $0.contains("cam") } ?? ""
        #expect(rowA.contains("205 ms"), "relay-a carries the glass stage: \(rowA)")
        #expect(!rowB.contains("205 ms"), "relay-b does not: \(rowB)")
        if let glassColumn {
            let column = header.distance(from: header.startIndex, to: glassColumn.lowerBound)
            let cell = rowA.dropFirst(column).prefix(9)
            #expect(cell.contains("205"), "the figure sits under GLASS: \(header) / \(rowA)")
        }
    }

    @Test func theRetainedRangeTravelsAndOlderRelaysLeaveItOut() throws {
        let old = #"{"partition":0,"position":990,"highWatermark":1000,"newestAgeMilliseconds":12,"lag":10}"#
        let decoded = try JSONDecoder().decode(ConsumerStatus.self, from: Data(old.utf8))
        #expect(decoded.lowWatermark == nil && decoded.retainedRecords == nil)
        let now = ConsumerStatus(position: 990, highWatermark: 1000, lowWatermark: 400, newestAgeMilliseconds: 12)
        let again = try JSONDecoder().decode(ConsumerStatus.self, from: JSONEncoder().encode(now))
        #expect(again == now && again.retainedRecords == 600)

        var status = Samples.relay("relay-a")
        status.topics[0].consumer = now
        var fleet = Fleet()
        fleet.apply(status, receivedAtMilliseconds: self.now)
        #expect(fleet.topics.first { $0.name == "cam" }?.retainedRecords == 600)
        let row = Table.build(.latency, fleet: fleet, nowMilliseconds: self.now).rows.first { $0.cells.contains("cam") }
        #expect(row?.details.contains { $0.0 == "retained" && $0.1.contains("400–1,000 (600 records)") } == true, "\(row?.details ?? [])")
    }
}
