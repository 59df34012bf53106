/// One Kafka record header. Kafka allows a null value, kept as nil.
public struct KafkaHeader: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]?

    public init(_ name: String, _ value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, string: String) {
        self.init(name, Array(string.utf8))
    }
}

/// A record to produce.
public struct KafkaOutgoingMessage: Sendable, Equatable {
    public var topic: String
    /// Explicit partition; kvb puts each stream on partition 0.
    public var partition: Int32
    public var key: [UInt8]
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(topic: String, partition: Int32 = 0, key: [UInt8], value: [UInt8], headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// A record consumed from Kafka.
public struct KafkaMessage: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// The record's timestamp in milliseconds since the Unix epoch, if it has one.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader], timestamp: Int64?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// The first header named `name`.
    public func header(_ name: String) -> [UInt8]? {
        headers.first { $0.name == name }?.value
    }
}

/// The outcome of one produced record, as librdkafka reported it.
public struct KafkaDeliveryReport: Sendable, Equatable {
    /// The id given to ``KafkaProducer/send(_:id:)``.
    public var id: UInt64
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var error: KafkaError?
}

/// Low and high watermark of a partition: the first offset kept and the offset the next record gets.
public struct KafkaWatermarks: Sendable, Equatable {
    public var low: Int64
    public var high: Int64

    public init(low: Int64, high: Int64) {
        self.low = low
        self.high = high
    }

    /// Where to start reading the recent past of a topic: at `timeOffset` (the first record at or
    /// after some time, from offsets-for-times) when the cluster answered one, otherwise
    /// `fallbackRecords` back from the end; never more than `maxRecords` back (a broker may answer
    /// a time past its newest record with its oldest offset).
    public func recentStart(timeOffset: Int64?, fallbackRecords: Int64, maxRecords: Int64) -> Int64 {
        let floor = max(low, high - maxRecords)
        guard let timeOffset, timeOffset >= 0 else { return max(floor, high - fallbackRecords) }
        return min(high, max(floor, timeOffset))
    }
}
