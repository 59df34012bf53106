import Foundation

/// A viewer page's `{"type":"stats","delay":SECONDS,"state":"playing"}` message.
struct ViewerReport: Decodable, Equatable {
    var type: String
    var delay: Double?
    var state: String?

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
}
