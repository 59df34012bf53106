import Metrics
import Relay

/// `kvb_rejected_total{reason}`: every connection the relay refuses, closes for bad input or cuts
/// off, by its error's label. Counted once, where the connection ends (``Connection``), or where
/// there is no WebSocket to close (request headers that never came, a stalled viewer).
enum Rejections {
    static func count(_ error: RelayError) {
        count(reason: error.label)
    }

    /// A refusal that is not a ``RelayError`` (an HTTP request for something that is not there).
    static func count(reason: String) {
        Counter(label: "kvb_rejected_total", dimensions: [("reason", reason)]).increment()
    }
}
