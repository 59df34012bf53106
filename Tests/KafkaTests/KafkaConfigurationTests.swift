import Kafka
import Logging
import Testing

@Suite("Kafka configuration")
struct KafkaConfigurationTests {
    @Test func noBootstrapServersMeansEmbedded() {
        #expect(KafkaConfiguration.fromEnvironment([:]) == nil)
        #expect(KafkaConfiguration.fromEnvironment(["BOOTSTRAP_SERVERS": "  "]) == nil)
    }

    @Test func theOriginalsVariablesAreRead() throws {
        let configuration = try #require(KafkaConfiguration.fromEnvironment([
            "BOOTSTRAP_SERVERS": "pkc-123.example.cloud:9092",
            "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_MECHANISMS": "PLAIN",
            "SASL_USERNAME": "key",
            "SASL_PASSWORD": "secret",
            "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "https",
            "UNRELATED": "x",
        ]))
        let properties = configuration.librdkafkaProperties(for: .producer)
        #expect(properties["bootstrap.servers"] == "pkc-123.example.cloud:9092")
        #expect(properties["security.protocol"] == "SASL_SSL")
        #expect(properties["sasl.mechanisms"] == "PLAIN")
        #expect(properties["sasl.username"] == "key")
        #expect(properties["sasl.password"] == "secret")
        #expect(properties["ssl.endpoint.identification.algorithm"] == "https")
        #expect(properties["unrelated"] == nil)
    }

    @Test func liveVideoDefaultsCanBeOverridden() {
        var configuration = KafkaConfiguration(bootstrapServers: "h:1")
        #expect(configuration.librdkafkaProperties(for: .consumer)["fetch.wait.max.ms"] == "5")
        #expect(configuration.librdkafkaProperties(for: .producer)["linger.ms"] == "0")
        #expect(configuration.librdkafkaProperties(for: .producer)["acks"] == "all")
        configuration.properties["linger.ms"] = "2"
        #expect(configuration.librdkafkaProperties(for: .producer)["linger.ms"] == "2")
    }

    /// The SASL/SSL settings really reach librdkafka: read back from the handle it built.
    @Test func saslSettingsReachLibrdkafka() throws {
        let configuration = try #require(KafkaConfiguration.fromEnvironment([
            "BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_MECHANISMS": "PLAIN",
            "SASL_USERNAME": "alice",
            "SASL_PASSWORD": "s3cret",
        ]))
        let producer = try KafkaProducer(configuration: configuration, logger: Logger(label: "test")) { _ in }
        defer { producer.close() }
        #expect(producer.effectiveProperty("security.protocol") == "sasl_ssl")
        #expect(producer.effectiveProperty("sasl.mechanisms") == "PLAIN")
        #expect(producer.effectiveProperty("sasl.username") == "alice")
        #expect(producer.effectiveProperty("sasl.password") == "s3cret")
        #expect(producer.effectiveProperty("enable.idempotence") == "true")
        let consumer = try KafkaConsumer(configuration: configuration, logger: Logger(label: "test"))
        defer { consumer.close() }
        #expect(consumer.effectiveProperty("security.protocol") == "sasl_ssl")
        #expect(consumer.effectiveProperty("fetch.wait.max.ms") == "5")
    }

    @Test func anUnknownPropertyIsAClearError() {
        var configuration = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")
        configuration.properties["no.such.property"] = "1"
        do {
            let producer = try KafkaProducer(configuration: configuration, logger: Logger(label: "test")) { _ in }
            producer.close()
            Issue.record("an unknown property was accepted")
        } catch {
            #expect(error.message.contains("no.such.property"))
        }
    }
}
