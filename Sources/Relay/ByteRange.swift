/// One byte range of an HTTP `Range` request header (RFC 9110, 14.1.2), resolved against the
/// length of what is asked for.
public enum ByteRange: Equatable, Sendable {
    /// Send these bytes (206 Partial Content).
    case partial(ClosedRange<Int64>)
    /// Send everything (200): no header, several ranges, another unit or a malformed one (a
    /// server may ignore any of those).
    case whole
    /// The range starts past the end (416 Range Not Satisfiable).
    case unsatisfiable

    public init(header: String?, length: Int64) {
        guard let header, header.hasPrefix("bytes="), length > 0 else {
            self = .whole
            return
        }
        let spec = header.dropFirst("bytes=".count).trimmingSpaces()
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else {
            self = .whole
            return
        }
        let first = spec[..<dash].trimmingSpaces()
        let last = spec[spec.index(after: dash)...].trimmingSpaces()
        switch (Int64(first), Int64(last)) {
        case (nil, let suffix?) where first.isEmpty && suffix >= 0:
            // The last `suffix` bytes.
            self = suffix == 0 ? .unsatisfiable : .partial(max(0, length - suffix)...(length - 1))
        case (let start?, nil) where last.isEmpty && start >= 0:
            self = start >= length ? .unsatisfiable : .partial(start...(length - 1))
        case (let start?, let end?) where start >= 0 && end >= start:
            self = start >= length ? .unsatisfiable : .partial(start...min(end, length - 1))
        default:
            self = .whole
        }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
