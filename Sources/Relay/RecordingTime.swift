import Foundation

/// A moment in a recording as a URL gives it: `2026-12-06T02:30:00Z` (ISO 8601, fractions and
/// offsets allowed), `1796523481721` (ms since the Unix epoch), or `-30s` / `-2m` / `-1h` /
/// `-1500ms` (that long before now).
public enum RecordingTime {
    /// Milliseconds since the Unix epoch, or nil when `text` is none of the above.
    public static func parse(_ text: String, nowMilliseconds: Int64) -> Int64? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("-") {
            let body = text.dropFirst()
            let units: [(String, Double)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
            for (suffix, scale) in units where body.hasSuffix(suffix) {
                guard let amount = Double(body.dropLast(suffix.count)), amount.isFinite, amount >= 0, amount < 1e9 else { return nil }
                return nowMilliseconds - Int64(amount * scale)
            }
            return nil
        }
        if !text.isEmpty, text.allSatisfy(\.isNumber) {
            return Int64(text)
        }
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        }
        return nil
    }
}
