import Foundation

/// A viewer page's `{"type":"stats","delay":SECONDS,"state":"playing","glass":[MS,...]}` message.
struct ViewerReport: Decodable, Equatable {
    var type: String
    var delay: Double?
    var state: String?
    /// Glass-to-glass delays the page measured since its last report, in milliseconds.
    var glass: [Double]?

    /// Samples taken from one report at most; the page sends up to 64 a second.
    static let maxGlassSamples = 64
    /// A glass figure at or above this (ms) is not a measurement: the clocks differ.
    static let maxGlassMilliseconds: Double = 60_000

    /// nil for anything that is not a stats message.
    init?(json: String) {
        guard json.utf8.count < 4096,
              let decoded = try? JSONDecoder().decode(ViewerReport.self, from: Data(json.utf8)),
              decoded.type == "stats"
        else { return nil }
        self = decoded
    }

    var delayMilliseconds: Int64? {
        guard let delay, delay.isFinite, delay >= 0, delay < 86_400 else { return nil }
        return Int64((delay * 1000).rounded())
    }

    /// The glass samples that can be measurements, oldest first, at most `maxGlassSamples`.
    var glassMilliseconds: [Int64] {
        (glass ?? []).prefix(Self.maxGlassSamples)
            .filter { $0.isFinite && $0 >= 0 && $0 < Self.maxGlassMilliseconds }
            .map { Int64($0.rounded()) }
    }
}
