import ControlPlane
import Testing
@testable import ConsoleUI

@Suite("Number formatting")
struct FormatTests {
    @Test func bytes() {
        #expect(Format.bytes(0) == "0 B")
        #expect(Format.bytes(1023) == "1023 B")
        #expect(Format.bytes(1536) == "1.5 KiB")
        #expect(Format.bytes(5_000_000) == "4.8 MiB")
        #expect(Format.bytes(200 * 1_048_576) == "200 MiB")
    }

    @Test func rates() {
        #expect(Format.bitrate(0) == "0 b/s")
        #expect(Format.bitrate(850_000) == "850 kb/s")
        #expect(Format.bitrate(1_234_000) == "1.2 Mb/s")
        #expect(Format.byteRate(150_000) == "1.2 Mb/s")
        #expect(Format.perSecond(7.46) == "7.5/s")
        #expect(Format.perSecond(70) == "70/s")
    }

    @Test func durationsAndMilliseconds() {
        #expect(Format.duration(milliseconds: 45_000) == "45s")
        #expect(Format.duration(milliseconds: 192_000) == "3m12s")
        #expect(Format.duration(milliseconds: 7_500_000) == "2h05m")
        #expect(Format.duration(milliseconds: 273_600_000) == "3d04h")
        #expect(Format.milliseconds(nil) == "—")
        #expect(Format.milliseconds(0.42) == "0.4 ms")
        #expect(Format.milliseconds(12.4) == "12 ms")
        #expect(Format.milliseconds(1250) == "1.25 s")
        #expect(Format.count(1_234_567) == "1,234,567")
    }

    @Test func timestampsAreISO8601InUTC() {
        #expect(Format.timestamp(milliseconds: 1_796_531_785_305) == "2026-12-06T04:36:25Z")
        #expect(Format.timestamp(milliseconds: 1_796_531_785_305, exact: true) == "2026-12-06T04:36:25.305Z")
        #expect(Format.timestamp(milliseconds: 0, exact: true) == "1970-01-01T00:00:00.000Z")
        #expect(Format.timestamp(milliseconds: -1, exact: true) == "1969-12-31T23:59:59.999Z")
        #expect(Format.timestamp(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00Z")
        #expect(Format.timestamp(milliseconds: 4_102_444_799_999, exact: true) == "2099-12-31T23:59:59.999Z")
        #expect(Format.timestamp(milliseconds: -1_500, exact: true) == "1969-12-31T23:59:58.500Z")
        // Times from record headers can be anything: they format, never trap.
        #expect(Format.timestamp(milliseconds: .max, exact: true).hasSuffix(".807Z"))
        #expect(Format.timestamp(milliseconds: .min, exact: true).hasSuffix(".192Z"))
    }

    /// Numbers from status documents are anyone's: they must format, never trap (see `make fuzz`).
    @Test func absurdNumbers() {
        #expect(Format.milliseconds(-0.5) == "-0.5 ms")
        #expect(Format.milliseconds(-1e97) == "— ms")
        #expect(Format.perSecond(3.3e19) == "—/s")
        #expect(Format.byteRate(1e300) == "— Gb/s")
        #expect(Format.sparkline([1e-300, -1e300], width: 2) == "█▁")
        #expect(Int64.max.saturatingAdd(1) == .max)
        #expect(Int64.min.saturatingSubtract(1) == .min)
        #expect(Int64(0).saturatingSubtract(.min) == .max)
    }

    @Test func fittingTextToColumns() {
        #expect(Format.fit("abc", 5) == "abc  ")
        #expect(Format.fit("abc", 5, .right) == "  abc")
        #expect(Format.fit("abcdef", 4) == "abc…")
        #expect(Format.sparkline([1, 2, 4, 8], width: 6) == "  ▂▃▅█")
        #expect(Format.sparkline([0, 0], width: 3) == " ▁▁")
    }
}
