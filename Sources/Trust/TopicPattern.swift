/// A topic glob: `*` matches any run of characters (also none), `?` exactly one; everything else
/// matches itself. `cam-*` matches `cam-1` and `cam-`; `*` matches every topic.
public struct TopicPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let pattern: [UInt8]

    public init(_ text: String) throws(TrustError) {
        guard !text.isEmpty else { throw TrustError("a topic pattern is empty") }
        guard text.utf8.count <= 249 else { throw TrustError("the topic pattern \"\(text.prefix(40))…\" is longer than 249 characters") }
        let allowed = text.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D || byte == 0x2A || byte == 0x3F
        }
        guard allowed else {
            throw TrustError("the topic pattern \"\(text)\" may only contain letters, digits, '.', '_', '-' and the wildcards '*' and '?'")
        }
        self.text = text
        self.pattern = Array(text.utf8)
    }

    private init(unchecked text: String) {
        self.text = text
        self.pattern = Array(text.utf8)
    }

    /// Matches every topic.
    public static let any = TopicPattern(unchecked: "*")

    /// Whether `topic` matches. Linear backtracking on the last `*`: O(n·m) at worst, no recursion.
    public func matches(_ topic: String) -> Bool {
        let name = Array(topic.utf8)
        var p = 0, n = 0
        var star: Int?
        var resume = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == name[n] {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = n
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                n = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    public var description: String { text }
}
