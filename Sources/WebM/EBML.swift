/// EBML element IDs that kvb needs, and the variable-length integer codec EBML is built on.
///
/// IDs keep their length-marker bits, as the Matroska specification writes them.
public enum EBMLID {
    public static let ebmlHeader: UInt32 = 0x1A45_DFA3
    public static let docType: UInt32 = 0x4282
    public static let segment: UInt32 = 0x1853_8067
    public static let seekHead: UInt32 = 0x114D_9B74
    public static let info: UInt32 = 0x1549_A966
    public static let tracks: UInt32 = 0x1654_AE6B
    public static let trackEntry: UInt32 = 0xAE
    public static let trackNumber: UInt32 = 0xD7
    public static let trackType: UInt32 = 0x83
    public static let codecID: UInt32 = 0x86
    public static let cluster: UInt32 = 0x1F43_B675
    public static let timecode: UInt32 = 0xE7
    public static let simpleBlock: UInt32 = 0xA3
    public static let blockGroup: UInt32 = 0xA0
    public static let block: UInt32 = 0xA1
    public static let referenceBlock: UInt32 = 0xFB
    public static let void: UInt32 = 0xEC
    public static let crc32: UInt32 = 0xBF

    /// Children a Cluster may hold. In a Cluster of unknown size, any other ID ends the Cluster.
    static let clusterChildren: Set<UInt32> = [
        timecode, simpleBlock, blockGroup, void, crc32,
        0xA7,  // Position
        0xAB,  // PrevSize
        0xAF,  // EncryptedBlock
        0x5854,  // SilentTracks
    ]
}

/// A parsed element header: its ID, its data size (nil when "unknown") and the header's length.
struct EBMLElementHeader: Equatable {
    var id: UInt32
    var size: UInt64?
    var headerLength: Int
}

/// Outcome of reading a variable-length integer from a buffer that may end early.
enum VintRead: Equatable {
    case value(UInt64, length: Int, allOnes: Bool)
    case needMoreData
    case invalid
}

enum EBML {
    /// Reads a variable-length integer at `index`; `keepMarker` keeps the length bit (element IDs).
    static func readVint(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, maxLength: Int, keepMarker: Bool) -> VintRead {
        guard index < bytes.count else { return .needMoreData }
        let first = bytes[index]
        guard first != 0 else { return .invalid }
        let length = first.leadingZeroBitCount + 1
        guard length <= maxLength else { return .invalid }
        guard index + length <= bytes.count else { return .needMoreData }
        let marker: UInt8 = 0x80 >> (length - 1)
        var value = UInt64(keepMarker ? first : first & ~marker)
        var allOnes = (first & ~marker) == (marker &- 1)
        for offset in 1..<length {
            let byte = bytes[index + offset]
            value = value << 8 | UInt64(byte)
            allOnes = allOnes && byte == 0xFF
        }
        return .value(value, length: length, allOnes: allOnes)
    }

    /// Reads an element header (ID then size) at `index`.
    static func readHeader(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Result<EBMLElementHeader?, HeaderProblem> {
        switch readVint(bytes, at: index, maxLength: 4, keepMarker: true) {
        case .needMoreData: return .success(nil)
        case .invalid: return .failure(.invalidID)
        case .value(let id, let idLength, _):
            switch readVint(bytes, at: index + idLength, maxLength: 8, keepMarker: false) {
            case .needMoreData: return .success(nil)
            case .invalid: return .failure(.invalidSize)
            case .value(let size, let sizeLength, let allOnes):
                return .success(EBMLElementHeader(id: UInt32(id), size: allOnes ? nil : size, headerLength: idLength + sizeLength))
            }
        }
    }

    enum HeaderProblem: Error { case invalidID, invalidSize }

    /// Reads an unsigned integer element's payload (big-endian, 0–8 bytes).
    static func readUInt(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, count: Int) -> UInt64? {
        guard count <= 8, start + count <= bytes.count else { return nil }
        var value: UInt64 = 0
        for i in 0..<count { value = value << 8 | UInt64(bytes[start + i]) }
        return value
    }

    /// Walks the children of a fully buffered master element's payload, calling `visit` with each
    /// child's ID, payload start and payload length. Stops (returning false) on malformed data.
    @discardableResult
    static func forEachChild(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int,
        _ visit: (UInt32, Int, Int) -> Void
    ) -> Bool {
        var index = start
        while index < end {
            guard case .success(let parsed) = readHeader(bytes, at: index), let header = parsed,
                  let size = header.size, index + header.headerLength + Int(size) <= end
            else { return false }
            let payload = index + header.headerLength
            visit(header.id, payload, Int(size))
            index = payload + Int(size)
        }
        return true
    }
}
