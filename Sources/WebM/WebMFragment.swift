/// A piece of the WebM stream cut at element boundaries: either the start of a Cluster (its
/// header and children up to and including its first video block, or as much of that as the input
/// held when it ended) or one further element.
public struct WebMFragment: Equatable, Sendable {
    public var bytes: [UInt8]
    /// The fragment opens a Cluster.
    public var startsCluster: Bool
    /// The fragment opens a Cluster whose first video block is a keyframe: a viewer can start here.
    public var isKeyframe: Bool
    /// The fragment holds the first video block of a Cluster that opened in an earlier fragment
    /// (the input ended before that block arrived, and nothing is held back waiting for it), and
    /// that block is a keyframe: a viewer can start at the fragment that opened the Cluster.
    public var makesClusterAJoinPoint: Bool

    public init(bytes: [UInt8], startsCluster: Bool, isKeyframe: Bool, makesClusterAJoinPoint: Bool = false) {
        self.bytes = bytes
        self.startsCluster = startsCluster
        self.isKeyframe = isKeyframe
        self.makesClusterAJoinPoint = makesClusterAJoinPoint
    }
}

/// What the segmenter found in the bytes given to it so far.
public enum WebMSegmenterOutput: Equatable, Sendable {
    /// The init segment, once, before any fragment.
    case initSegment(WebMInitSegment)
    case fragment(WebMFragment)
}
