/// A piece of the WebM stream cut at element boundaries: either the start of a Cluster (its
/// header and children up to and including its first video block) or one further element.
public struct WebMFragment: Equatable, Sendable {
    public var bytes: [UInt8]
    /// The fragment opens a Cluster.
    public var startsCluster: Bool
    /// The fragment opens a Cluster whose first video block is a keyframe: a viewer can start here.
    public var isKeyframe: Bool

    public init(bytes: [UInt8], startsCluster: Bool, isKeyframe: Bool) {
        self.bytes = bytes
        self.startsCluster = startsCluster
        self.isKeyframe = isKeyframe
    }
}

/// What the segmenter found in the bytes given to it so far.
public enum WebMSegmenterOutput: Equatable, Sendable {
    /// The init segment, once, before any fragment.
    case initSegment(WebMInitSegment)
    case fragment(WebMFragment)
}
