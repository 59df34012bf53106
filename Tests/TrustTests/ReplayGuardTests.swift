import Testing
import Trust

@Suite("Replay guard")
struct ReplayGuardTests {
    @Test func eachCommandIsAdmittedOnceWhileFresh() {
        var guardian = ReplayGuard(maxAgeMilliseconds: 30_000, maxFutureMilliseconds: 5_000)
        #expect(guardian.admit(id: "a", issuedAtMilliseconds: 100_000, nowMilliseconds: 100_000) == .accepted)
        #expect(guardian.admit(id: "a", issuedAtMilliseconds: 100_000, nowMilliseconds: 101_000) == .replayed)
        #expect(guardian.admit(id: "b", issuedAtMilliseconds: 69_999, nowMilliseconds: 100_000) == .stale)
        #expect(guardian.admit(id: "c", issuedAtMilliseconds: 105_001, nowMilliseconds: 100_000) == .future)
        #expect(guardian.admit(id: "d", issuedAtMilliseconds: 105_000, nowMilliseconds: 100_000) == .accepted)
        // Once an id's command is too old to be fresh, a replay is refused as stale.
        #expect(guardian.admit(id: "a", issuedAtMilliseconds: 100_000, nowMilliseconds: 140_000) == .stale)
    }

    @Test func extremeTimesNeverTrap() {
        var guardian = ReplayGuard()
        #expect(guardian.admit(id: "a", issuedAtMilliseconds: .min, nowMilliseconds: 1_000) == .stale)
        #expect(guardian.admit(id: "b", issuedAtMilliseconds: .max, nowMilliseconds: 1_000) == .future)
        #expect(guardian.admit(id: "c", issuedAtMilliseconds: .max, nowMilliseconds: .max) == .accepted)
        #expect(guardian.admit(id: "d", issuedAtMilliseconds: .min, nowMilliseconds: .min) == .accepted)
    }

    @Test func memoryIsBoundedAndForgetsOnlyWhatCannotComeBack() {
        var guardian = ReplayGuard(maxAgeMilliseconds: 1_000, maxFutureMilliseconds: 0, capacity: 100)
        for i in 0..<100 {
            #expect(guardian.admit(id: "x\(i)", issuedAtMilliseconds: 10_000, nowMilliseconds: 10_000) == .accepted)
        }
        #expect(guardian.admit(id: "y", issuedAtMilliseconds: 10_000, nowMilliseconds: 10_500) == .overCapacity,
                "full of fresh ids: refuse rather than forget one that could be replayed")
        #expect(guardian.admit(id: "y", issuedAtMilliseconds: 11_500, nowMilliseconds: 11_500) == .accepted, "old ids pruned")
        #expect(guardian.rememberedCount <= 100)
    }
}
