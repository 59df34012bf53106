/// Where a viewer's frames go: its socket, written on the thread that owns it (an event loop).
///
/// Feeds hand frames to viewers in bulk: after a fragment is queued for every viewer of a topic,
/// one task per executor writes what each of its viewers has queued and flushes once per viewer.
/// No task per viewer wakes up, and nothing is copied or allocated per viewer.
public protocol ViewerTransport: Sendable {
    /// Viewers with the same executor are written by one task on it.
    var executorID: ObjectIdentifier { get }
    /// Runs `body` on the executor.
    func execute(_ body: @escaping @Sendable () -> Void)
    /// Whether the socket takes more now (called on the executor).
    var isWritable: Bool { get }
    /// Writes a frame without flushing (called on the executor).
    func write(_ frame: ViewerFrame)
    /// Sends what was written (called on the executor).
    func flush()
}
