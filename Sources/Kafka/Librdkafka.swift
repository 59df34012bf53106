import CRdKafka

/// The librdkafka this process loaded (which may differ from the headers it was built with: the
/// shared library is found at run time, e.g. through LD_LIBRARY_PATH).
public enum Librdkafka {
    /// Its version string, e.g. "2.0.2".
    public static var version: String { String(cString: rd_kafka_version_str()) }
}
