/// Admits each signed command once, and only while it is fresh: a command older than
/// ``maxAgeMilliseconds`` or dated more than ``maxFutureMilliseconds`` ahead is refused, and an id
/// seen before is a replay. Ids are remembered only as long as their command could still be
/// fresh, and never more than ``capacity`` of them. Pure logic, no clock of its own.
public struct ReplayGuard: Sendable {
    public enum Admission: String, Sendable, Equatable {
        case accepted
        case replayed
        case stale
        case future
        /// More fresh commands than ``capacity`` at once: refused rather than forgetting ids.
        case overCapacity = "over_capacity"
    }

    public let maxAgeMilliseconds: Int64
    public let maxFutureMilliseconds: Int64
    public let capacity: Int
    /// id → when it was issued.
    private var seen: [String: Int64] = [:]

    public init(maxAgeMilliseconds: Int64 = 30_000, maxFutureMilliseconds: Int64 = 5_000, capacity: Int = 10_000) {
        self.maxAgeMilliseconds = maxAgeMilliseconds
        self.maxFutureMilliseconds = maxFutureMilliseconds
        self.capacity = capacity
    }

    /// Ids currently remembered.
    public var rememberedCount: Int { seen.count }

    public mutating func admit(id: String, issuedAtMilliseconds issued: Int64, nowMilliseconds now: Int64) -> Admission {
        let oldest = now.saturatingSubtract(maxAgeMilliseconds)
        let newest = now.saturatingAdd(maxFutureMilliseconds)
        if issued < oldest { return .stale }
        if issued > newest { return .future }
        if seen[id] != nil { return .replayed }
        if seen.count >= capacity {
            seen = seen.filter { $0.value >= oldest }
            if seen.count >= capacity { return .overCapacity }
        }
        seen[id] = issued
        if seen.count % 256 == 0 { seen = seen.filter { $0.value >= oldest } }
        return .accepted
    }
}

extension Int64 {
    func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    func saturatingSubtract(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : difference
    }
}
