import ArgumentParser

/// `kvb-bench`: benchmarks that print numbers (`make bench`).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvb-bench",
        abstract: "Benchmarks that print numbers.",
        subcommands: [MicroCommand.self, LoadCommand.self, FloorCommand.self, KafkaCommand.self],
        defaultSubcommand: MicroCommand.self
    )
}

/// The in-process micro-benchmarks.
struct MicroCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "micro", abstract: "Segmenter, fan-out decisions and a Kafka round trip, in process.")

    @Argument(help: "A WebM recording to segment.")
    var fixture = "Tests/WebMTests/Fixtures/vp8-opus.webm"

    func run() throws {
        try MicroBenchmarks.run(fixturePath: fixture)
    }
}

/// Something that stops a benchmark, with what to do about it.
struct BenchError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
