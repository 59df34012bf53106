import Foundation
import ControlPlane
import Testing
@testable import ConsoleUI

@Suite("A relay that lists its viewers a page per status document")
struct FleetPagingTests {
    /// Page `index` of `count` of a relay with `total` viewers, `perPage` per page.
    static func page(_ index: Int, of count: Int, total: Int, perPage: Int, sentAt: Int64) -> RelayStatus {
        var status = Samples.relay("r1", sentAt: sentAt, viewers: 0)
        let ids = (0..<total).map { "v-\(String(format: "%04d", $0))" }
        for id in ids[(index * perPage)..<min(total, (index + 1) * perPage)] {
            status.sessions.append(SessionStatus(id: id, role: .viewer, topic: "cam", remoteAddress: "10.0.0.1:1", userAgent: "",
                                                 connectedAtMilliseconds: 0, bytes: 0, bitrate: 0))
        }
        status.viewerPage = ViewerPage(index: index, count: count, viewers: total)
        return status
    }

    @Test func theConsoleKnowsEveryViewerOnceEveryPageHasComeRound() {
        var fleet = Fleet()
        let now = Samples.now
        fleet.apply(Self.page(0, of: 3, total: 25, perPage: 10, sentAt: now), receivedAtMilliseconds: now)
        #expect(fleet.sessions.filter { $0.session.role == .viewer }.count == 10)
        #expect(fleet.sessions.filter { $0.session.role == .publisher }.count == 1)
        fleet.apply(Self.page(1, of: 3, total: 25, perPage: 10, sentAt: now + 1000), receivedAtMilliseconds: now + 1000)
        fleet.apply(Self.page(2, of: 3, total: 25, perPage: 10, sentAt: now + 2000), receivedAtMilliseconds: now + 2000)
        let viewers = fleet.sessions.filter { $0.session.role == .viewer }.map(\.session.id)
        #expect(viewers.count == 25 && Set(viewers).count == 25, "each viewer once")
        #expect(viewers.contains("v-0024"), "the last page's viewer can be found (and kicked)")
        // Fewer viewers: the relay now has 2 pages; the third is forgotten.
        fleet.apply(Self.page(0, of: 2, total: 12, perPage: 10, sentAt: now + 3000), receivedAtMilliseconds: now + 3000)
        #expect(!fleet.sessions.contains { $0.session.id == "v-0024" })
        // Back to one document for all: pages are forgotten.
        fleet.apply(Samples.relay("r1", sentAt: now + 4000, viewers: 2), receivedAtMilliseconds: now + 4000)
        #expect(fleet.sessions.filter { $0.session.role == .viewer }.count == 2)
    }

    @Test func aPageNotSeenForAWholeRoundIsDropped() {
        var fleet = Fleet()
        let now = Samples.now
        fleet.apply(Self.page(1, of: 2, total: 20, perPage: 10, sentAt: now), receivedAtMilliseconds: now)
        fleet.apply(Self.page(0, of: 2, total: 20, perPage: 10, sentAt: now + 9000), receivedAtMilliseconds: now + 9000)
        #expect(fleet.sessions.filter { $0.session.role == .viewer }.count == 10, "page 1 is 9 s old; a round is 2 s + 5 s")
    }
}
