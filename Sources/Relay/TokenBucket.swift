/// A token bucket: `ratePerSecond` tokens flow in, up to `capacity`; a request takes its amount
/// or is refused. Pure logic over a caller's clock, for rate limits (publish bitrate, viewer
/// messages).
public struct TokenBucket: Sendable, Equatable {
    public let capacity: Double
    public let ratePerSecond: Double
    public private(set) var tokens: Double
    private var lastMilliseconds: Int64?

    /// Starts full.
    public init(capacity: Double, ratePerSecond: Double) {
        self.capacity = max(0, capacity)
        self.ratePerSecond = max(0, ratePerSecond)
        self.tokens = self.capacity
    }

    /// Takes `amount` tokens if there are that many; returns whether it could.
    public mutating func take(_ amount: Double, nowMilliseconds now: Int64) -> Bool {
        if let last = lastMilliseconds, now > last {
            tokens = min(capacity, tokens + Double(now - last) / 1000 * ratePerSecond)
        }
        lastMilliseconds = max(now, lastMilliseconds ?? now)
        guard tokens >= amount else { return false }
        tokens -= amount
        return true
    }
}
