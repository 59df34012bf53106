import ArgumentParser

/// `kvb-server`: a relay (the default) or, with `broker`, an embedded Kafka cluster on its own.
@main
struct KVBServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvb-server",
        abstract: "Live video broadcast through Apache Kafka: browser camera in, any number of viewers out.",
        discussion: """
            Kafka is configured as in the original project: BOOTSTRAP_SERVERS, SECURITY_PROTOCOL,
            SASL_MECHANISMS, SASL_USERNAME, SASL_PASSWORD. Any other librdkafka property can be
            given as KAFKA_<NAME> (KAFKA_SSL_CA_LOCATION sets ssl.ca.location) or with
            --kafka-property NAME=VALUE. Without BOOTSTRAP_SERVERS the relay starts an embedded
            Kafka cluster on loopback.
            """,
        subcommands: [ServeCommand.self, BrokerCommand.self, TokenCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
