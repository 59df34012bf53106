/// A configuration problem with keys, tokens or patterns, with a message an operator can act on.
public struct TrustError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
