/// Why a byte stream was refused. Every case says what was wrong and where (absolute byte offset
/// in the stream the publisher sent), so the message can go back to the sender as it is.
public struct WebMError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The stream does not start with an EBML header: it is not WebM at all.
        case notWebM
        /// EBML, but a DocType MSE will not play (MediaRecorder's H.264 records as "matroska").
        case unsupportedDocType
        /// An element ID or size that is not a valid EBML variable-length integer.
        case invalidElement
        /// An element in a place the WebM structure does not allow.
        case unexpectedElement
        /// An element larger than the configured limit (memory stays bounded).
        case elementTooLarge
        /// Everything before the first Cluster together exceeds the init segment limit.
        case initSegmentTooLarge
        /// A Cluster arrived before the Tracks element: viewers could not be initialised.
        case missingTracks
    }

    public var kind: Kind
    /// Absolute byte offset in the input where the problem was found.
    public var offset: Int64
    public var detail: String

    public init(_ kind: Kind, at offset: Int64, _ detail: String) {
        self.kind = kind
        self.offset = offset
        self.detail = detail
    }

    public var description: String { "\(detail) (at byte \(offset))" }
}
