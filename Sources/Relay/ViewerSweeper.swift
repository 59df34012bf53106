import Foundation
import Kafka

/// One thread for the whole relay that looks at every viewer twice a second: frames that waited
/// for a full socket are written once it may have drained, and a socket that took nothing for the
/// stall timeout is closed. (No viewer has a timer or task of its own.)
final class ViewerSweeper: Sendable {
    private let thread = Locked<KafkaPollThread?>(nil)

    static let intervalMilliseconds: Int64 = 500

    /// Starts sweeping the viewers `viewers` returns. Non-blocking.
    func start(stallMilliseconds: Int64, viewers: @escaping @Sendable () -> [ViewerConnection]) {
        let handle = KafkaPollThread(name: "kvb-viewer-sweeper") {
            Thread.sleep(forTimeInterval: Double(Self.intervalMilliseconds) / 1000)
            let now = currentMilliseconds()
            for viewer in viewers() { viewer.sweep(nowMilliseconds: now, stallMilliseconds: stallMilliseconds) }
        }
        thread.withLock { $0 = handle }
    }

    /// Stops sweeping. Blocking (up to one interval).
    func stop() {
        let handle = thread.withLock { value -> KafkaPollThread? in
            defer { value = nil }
            return value
        }
        handle?.stop()
    }
}
