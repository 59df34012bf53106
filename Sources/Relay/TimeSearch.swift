/// Finds the first record of a partition at or after a time when the cluster cannot answer
/// offsets-for-times (the embedded cluster): a binary search over the records' times (their
/// `kvb-ingest-ms`, or Kafka's timestamp), one record read per step, so at most about
/// 2·log₂(records) reads. Pure: it says which offset to read next and is told what was there.
struct TimeSearch: Sendable, Equatable {
    /// What to do next.
    enum Step: Equatable, Sendable {
        /// Read the first record at or after this offset, and tell ``saw(offset:milliseconds:)``.
        case read(Int64)
        /// Reading from this offset gives the first record at or after the time first (it may sit
        /// after missing offsets); the high watermark when every record is older.
        case found(Int64)
    }

    let target: Int64
    /// The answer is in `lower...upper`.
    private(set) var lower: Int64
    private(set) var upper: Int64
    private(set) var reads = 0

    /// Searches offsets `low..<high` (the partition's watermarks) for `milliseconds`.
    init(milliseconds: Int64, low: Int64, high: Int64) {
        target = milliseconds
        lower = low
        upper = max(low, high)
    }

    /// Reads allowed before the search gives its best answer (a partition whose times are not in
    /// order could otherwise keep it going).
    static let maxReads = 64

    var next: Step {
        lower >= upper || reads >= Self.maxReads ? .found(upper) : .read(lower + (upper - lower) / 2)
    }

    /// The record read for ``Step/read(_:)`` of `asked` is at `offset` (records can be missing,
    /// so it may be further on) with this time; nil `offset`: there was none before the end.
    mutating func saw(asked: Int64, offset: Int64?, milliseconds: Int64?) {
        reads += 1
        guard let offset, offset < upper else {
            // Nothing from `asked` up to the current bound: the answer is below `asked`, or is the bound.
            upper = max(lower, asked)
            return
        }
        if let milliseconds, milliseconds < target {
            lower = offset + 1
        } else {
            upper = offset
        }
    }
}
