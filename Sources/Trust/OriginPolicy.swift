import Foundation

/// Which web pages may open the relay's WebSockets, by their `Origin` header. Browsers always
/// send it; a page from another site is refused so it cannot publish or watch with a visitor's
/// browser. Clients that send no Origin (scripts, other servers) are not browsers and pass.
///
/// Allowed by default: the relay's own origin (the Origin's host and port equal the request's
/// `Host`) and loopback pages (`localhost`, `127.0.0.0/8`, `[::1]`). More with ``allowed``
/// (exact origins such as `https://studio.example.com`, or `*` for any).
public struct OriginPolicy: Sendable, Equatable {
    public var allowed: [String]
    public var allowLoopback: Bool

    public init(allowed: [String] = [], allowLoopback: Bool = true) {
        self.allowed = allowed.map(Self.normalized)
        self.allowLoopback = allowLoopback
    }

    public func allows(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        let normalized = Self.normalized(origin)
        if allowed.contains("*") || allowed.contains(normalized) { return true }
        guard let authority = Self.authority(of: normalized) else { return false }
        if let host, authority == host.lowercased() { return true }
        return allowLoopback && Self.isLoopback(authority: authority)
    }

    static func normalized(_ origin: String) -> String {
        var text = origin.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// `host[:port]` of `scheme://host[:port]`, nil for anything else (`null`, paths).
    static func authority(of origin: String) -> String? {
        guard let range = origin.range(of: "://") else { return nil }
        let rest = origin[range.upperBound...]
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return nil }
        return String(rest)
    }

    /// Whether `host[:port]` names this machine's loopback interface.
    static func isLoopback(authority: String) -> Bool {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return false }
            return Loopback.contains(host: String(authority[authority.index(after: authority.startIndex)..<close]))
        }
        return Loopback.contains(host: String(authority.split(separator: ":", maxSplits: 1).first ?? ""))
    }
}
