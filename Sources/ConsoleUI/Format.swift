/// Number and text formatting for the console: short, fixed-width friendly, no Foundation.
public enum Format {
    /// `0 B`, `512 B`, `1.5 KiB`, `12.3 MiB`, `1.0 GiB`.
    public static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(max(0, value))
        var unit = 0
        while amount >= 1024, unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(amount)) B" : "\(decimal(amount, places: amount < 10 ? 1 : 0)) \(units[unit])"
    }

    /// `0 b/s`, `850 kb/s`, `1.2 Mb/s` (decimal units, as network rates are quoted).
    public static func bitrate(_ bitsPerSecond: Double) -> String {
        let units = ["b/s", "kb/s", "Mb/s", "Gb/s"]
        var amount = max(0, bitsPerSecond)
        var unit = 0
        while amount >= 1000, unit < units.count - 1 {
            amount /= 1000
            unit += 1
        }
        return "\(decimal(amount, places: unit > 0 && amount < 10 ? 1 : 0)) \(units[unit])"
    }

    /// Bytes per second as a bitrate.
    public static func byteRate(_ bytesPerSecond: Double) -> String { bitrate(bytesPerSecond * 8) }

    /// `0/s`, `7.5/s`, `70/s`.
    public static func perSecond(_ value: Double) -> String {
        "\(decimal(max(0, value), places: value < 10 && value > 0 ? 1 : 0))/s"
    }

    /// `—` when unknown, `0.4 ms`, `12 ms`, `1.25 s`.
    public static func milliseconds(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "—" }
        if value >= 1000 { return "\(decimal(value / 1000, places: value < 10_000 ? 2 : value < 100_000 ? 1 : 0)) s" }
        return "\(decimal(value, places: value < 10 ? 1 : 0)) ms"
    }

    /// `45s`, `3m12s`, `2h05m`, `3d04h`.
    public static func duration(milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1000)
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(twoDigits(seconds % 60))s" }
        if seconds < 86400 { return "\(seconds / 3600)h\(twoDigits(seconds / 60 % 60))m" }
        return "\(seconds / 86400)d\(twoDigits(seconds / 3600 % 24))h"
    }

    /// A moment as ISO 8601 in UTC, `2026-12-06T04:38:01Z` (to the second) or
    /// `2026-12-06T04:38:01.305Z` (`exact`: to the millisecond, for links that start there).
    public static func timestamp(milliseconds: Int64, exact: Bool = false) -> String {
        // Floor division, written so that no value from a record can overflow.
        var fraction = milliseconds % 1000
        if fraction < 0 { fraction += 1000 }
        let seconds = milliseconds / 1000 - (milliseconds % 1000 < 0 ? 1 : 0)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let time = seconds - days * 86_400
        // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let millis = exact ? "." + String(String(1000 + fraction).dropFirst()) : ""
        return "\(year)-\(twoDigits(month))-\(twoDigits(day))T\(twoDigits(time / 3600)):\(twoDigits(time / 60 % 60)):\(twoDigits(time % 60))\(millis)Z"
    }

    /// A count with thousands separators: `1,234,567`.
    public static func count(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return value < 0 ? "-" + out : out
    }

    /// A sparkline of values scaled to their maximum: `▁▂▄█`.
    public static func sparkline(_ values: [Double], width: Int) -> String {
        let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        let shown = values.suffix(width)
        guard let top = shown.max(), top > 0 else { return String(repeating: " ", count: max(0, width - shown.count)) + String(repeating: "▁", count: shown.count) }
        let line = shown.map { value -> Character in
            // Clamped before the conversion: a value far below 0 scales to far below Int.min.
            let scaled = (value / top * Double(bars.count - 1)).rounded()
            return bars[scaled.isNaN ? 0 : Int(min(Double(bars.count - 1), max(0, scaled)))]
        }
        return String(repeating: " ", count: max(0, width - line.count)) + String(line)
    }

    public enum Alignment: Sendable { case left, right }

    /// Pads or cuts `text` to exactly `width` columns; a cut ends with `…`.
    public static func fit(_ text: String, _ width: Int, _ alignment: Alignment = .left) -> String {
        guard width > 0 else { return "" }
        let characters = Array(text)
        if characters.count > width {
            return String(characters.prefix(width - 1)) + "…"
        }
        let padding = String(repeating: " ", count: width - characters.count)
        return alignment == .left ? text + padding : padding + text
    }

    /// `value` with `places` decimals; `—` when it is not finite or too large for Int64 (the
    /// numbers come from status documents anyone on the topic can write).
    static func decimal(_ value: Double, places: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<places { scale *= 10 }
        guard let scaled = Int64(exactly: (value * Double(scale)).rounded()) else { return "—" }
        if places == 0 { return String(scaled) }
        let fraction = String(scaled.magnitude % scale)
        return "\(scaled < 0 ? "-" : "")\(scaled.magnitude / scale).\(String(repeating: "0", count: places - fraction.count))\(fraction)"
    }

    static func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
