import ArgumentParser
import Foundation
import Histogram
import NIOCore
import LoadGenerator
import Synchronization

/// `kvb-bench load`: starts a broker and relays, drives them with WebSocket publishers replaying a
/// committed recording at its pace and viewers checking every byte, and prints latency, relay
/// CPU, memory and threads per scenario.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test relays with WebSocket publishers and viewers; print a table and write JSON.",
        discussion: """
            Fan-out scenarios (--viewers): one publisher, N viewers spread over the relays.
            Topic scenario (--topics T:L): T watched topics with 1–10 viewers each, L of them live;
            then every publisher stops and the idle cost is measured.
            Media latency: from the publisher sending a chunk to a viewer holding its last complete
            WebM element. Every viewer's bytes are checked against what was published.
            """
    )

    @Option(help: "The kvb-server to run (default: the one beside kvb-bench).")
    var server: String?

    @Option(help: "A name for this run in the table and the JSON (e.g. baseline, after).")
    var label = "kvb"

    @Option(help: "short (default) or full.")
    var profile = "short"

    @Option(help: "Viewer counts for the fan-out scenarios, comma-separated (default by profile).")
    var viewers: String?

    @Option(help: "The topic scenario as TOPICS:LIVE, or none (default by profile).")
    var topics: String?

    @Option(help: "Relays the viewers are spread over (the publisher uses the first).")
    var relays = 1

    @Option(help: "Of the viewers, how many read slowly (a message every 400 ms).")
    var slowViewers = 0

    @Option(help: "Seconds measured per scenario (default by profile).")
    var seconds: Int?

    @Option(help: "Seconds after the last viewer connects before measuring.")
    var warmup = 3

    @Option(help: "The recording to replay (its .chunks.json beside it gives the chunk sizes).")
    var recording = "Tests/WebMTests/Fixtures/vp8-opus.webm"

    @Option(help: "Append results to this JSON file.")
    var json = "bench-results/load.json"

    @Option(help: "Event loop threads of the load generator.")
    var clientThreads = 2

    @Option(name: .customLong("relay-argument"), parsing: .unconditionalSingleValue, help: "An extra argument for every relay (repeatable), e.g. --relay-argument=--kafka-property=fetch.wait.max.ms=50.")
    var relayArguments: [String] = []

    func run() async throws {
        let serverPath = server ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kvb-server").path
        guard FileManager.default.isExecutableFile(atPath: serverPath) else { throw BenchError("no kvb-server at \(serverPath) (build it, or pass --server)") }
        let full = profile == "full"
        let viewerCounts = (viewers ?? (full ? "100,300,1000,5000" : "100,1000")).split(separator: ",").compactMap { Int($0) }
        let topicScenario = (topics ?? "200:20").split(separator: ":").compactMap { Int($0) }
        let measured = seconds ?? (full ? 30 : 12)
        let stream = try loadStream(minimumSeconds: measured + warmup + 240)

        var scenarios: [LoadScenario] = viewerCounts.map { count in
            LoadScenario(name: "fan-out \(count)", relays: relays, liveTopics: 1, idleTopics: 0, viewersPerTopic: { _ in count },
                         slowViewers: slowViewers, seconds: measured, warmup: warmup)
        }
        if topicScenario.count == 2, topicScenario[0] > 0 {
            let (all, live) = (topicScenario[0], min(topicScenario[1], topicScenario[0]))
            scenarios.append(LoadScenario(name: "topics \(all) (\(live) live)", relays: 1, liveTopics: live, idleTopics: all - live,
                                          viewersPerTopic: { 1 + $0 % 10 }, slowViewers: 0, seconds: measured, warmup: warmup,
                                          idleSeconds: 10))
        }
        var results: [LoadResult] = []
        print(LoadResult.header)
        for scenario in scenarios {
            let result = try await LoadRun(scenario: scenario, label: label, server: serverPath, stream: stream,
                                           clientThreads: clientThreads, extraRelayArguments: relayArguments).run()
            print(result.row)
            if let problem = result.firstMismatch { print("    first mismatch: \(problem)") }
            results.append(result)
        }
        try LoadResult.append(results, to: json)
        print("results appended to \(json)")
    }

    private func loadStream(minimumSeconds: Int) throws -> PublishedStream {
        guard let bytes = FileManager.default.contents(atPath: recording) else { throw BenchError("cannot read \(recording)") }
        struct Chunks: Decodable { var chunks: [Int] }
        let chunksURL = URL(fileURLWithPath: recording + ".chunks.json")
        guard let chunks = try? JSONDecoder().decode(Chunks.self, from: Data(contentsOf: chunksURL)) else {
            throw BenchError("cannot read the chunk sizes in \(chunksURL.path)")
        }
        return try PublishedStream(recording: [UInt8](bytes), chunkSizes: chunks.chunks, minimumChunks: minimumSeconds * 10)
    }
}

/// One scenario: topics, who publishes, how many watch.
struct LoadScenario: Sendable {
    var name: String
    var relays: Int
    var liveTopics: Int
    var idleTopics: Int
    /// Viewers of topic number N.
    var viewersPerTopic: @Sendable (Int) -> Int
    var slowViewers: Int
    var seconds: Int
    var warmup: Int
    /// When set, publishers stop after the measured window and the idle cost is measured this long.
    var idleSeconds: Int?

    var topicCount: Int { liveTopics + idleTopics }
}

/// Runs one scenario on a fresh broker and relays.
struct LoadRun {
    let scenario: LoadScenario
    let label: String
    let server: String
    let stream: PublishedStream
    let clientThreads: Int
    var extraRelayArguments: [String] = []

    /// Lifts the per-relay limits out of the way of the load; everything else is the relay's default.
    static let relayArguments = [
        "--max-viewers", "100000", "--max-viewers-per-topic", "100000", "--max-connections-per-address", "100000",
        "--max-feeds", "1000", "--max-publishers", "1000",
    ]

    func run() async throws -> LoadResult {
        let logs = URL(fileURLWithPath: "bench-results/logs/\(label)-\(scenario.name.replacingOccurrences(of: " ", with: "-"))")
        let cluster = try KvbCluster.start(server: server, relays: scenario.relays, relayArguments: Self.relayArguments + extraRelayArguments, logs: logs)
        defer { cluster.stop() }
        let clients = LoadClients(threads: clientThreads)
        let topics = (0..<scenario.topicCount).map { String(format: "bench-%03d", $0) }
        let stopPublishers = StopSignal()
        let stopViewers = StopSignal()
        let window = MeasureWindow()
        let logs_ = topics.map { _ in SendLog(chunks: stream.chunkEnds.count) }

        return await withTaskGroup(of: Void.self) { background in
            // Publishers on the first relay, for the live topics.
            let publisherErrors = Collected<String>()
            for index in 0..<scenario.liveTopics {
                background.addTask {
                    if let error = await clients.publish(port: cluster.relayPorts[0], topic: topics[index], stream: stream,
                                                         log: logs_[index], stop: stopPublishers) {
                        publisherErrors.append(error)
                    }
                }
            }
            try? await Task.sleep(for: .seconds(1.5))

            // Viewers, spread over the relays, at most 64 handshakes in flight.
            let connected = Tally()
            var plan: [(topic: Int, relay: Int, slow: Bool)] = []
            for topic in topics.indices {
                for _ in 0..<scenario.viewersPerTopic(topic) { plan.append((topic, plan.count % scenario.relays, false)) }
            }
            for index in plan.indices.suffix(scenario.slowViewers) { plan[index].slow = true }
            let outcomes = Collected<ViewerOutcome>()
            let finished = Tally()
            let started = ContinuousClock.now
            for (number, viewer) in plan.enumerated() {
                while number - connected.value - finished.value > 64 {
                    try? await Task.sleep(for: .milliseconds(2))
                }
                background.addTask {
                    let outcome = await RawViewer.watch(group: clients.group, port: cluster.relayPorts[viewer.relay],
                                                        path: "/ws/watch/\(topics[viewer.topic])?client=bench-\(number)",
                                                        stream: stream, log: logs_[viewer.topic], window: window, slow: viewer.slow,
                                                        connected: connected, stop: stopViewers)
                    if !outcome.connected { finished.add() }
                    outcomes.append(outcome)
                }
            }
            while connected.value + finished.value < plan.count,
                  ContinuousClock.now - started < .seconds(180) {
                try? await Task.sleep(for: .milliseconds(50))
            }
            let rampSeconds = (ContinuousClock.now - started).seconds
            try? await Task.sleep(for: .seconds(scenario.warmup))

            // The measured window.
            let measured = await measure(cluster: cluster, seconds: scenario.seconds, window: window)
            var idle: IdleFigures?
            if let idleSeconds = scenario.idleSeconds {
                stopPublishers.fire()
                try? await Task.sleep(for: .seconds(3))
                let quiet = await measure(cluster: cluster, seconds: idleSeconds, window: nil)
                idle = IdleFigures(relayCPU: quiet.relayCPU, brokerCPU: quiet.brokerCPU, relayThreads: quiet.relayThreads)
            }
            stopPublishers.fire()
            stopViewers.fire()
            await background.waitForAll()
            let all = outcomes.all
            try? await clients.group.shutdownGracefully()
            return LoadResult(label: label, scenario: scenario, viewers: plan.count, outcomes: all, measured: measured,
                              idle: idle, rampSeconds: rampSeconds, publisherErrors: publisherErrors.all)
        }
    }

    /// Samples the relays, the broker and the generator over `seconds`.
    private func measure(cluster: KvbCluster, seconds: Int, window: MeasureWindow?) async -> Measured {
        let relayStart = cluster.relays.map { ProcessSample.read(pid: $0.pid) }
        let brokerStart = ProcessSample.read(pid: cluster.broker.pid)
        let ownStart = (ProcessSample.ownCPUSeconds(), ContinuousClock.now)
        window?.begin()
        var peakRSS = 0
        var peakThreads = 0
        for _ in 0..<max(1, seconds * 2) {
            try? await Task.sleep(for: .milliseconds(500))
            for relay in cluster.relays {
                if let sample = ProcessSample.read(pid: relay.pid) {
                    peakRSS = max(peakRSS, sample.residentBytes)
                    peakThreads = max(peakThreads, sample.threads)
                }
            }
        }
        window?.finish()
        let relayEnd = cluster.relays.map { ProcessSample.read(pid: $0.pid) }
        let brokerEnd = ProcessSample.read(pid: cluster.broker.pid)
        let ownCPU = ProcessSample.ownCPUSeconds() - ownStart.0
        let wall = (ContinuousClock.now - ownStart.1).seconds
        let relayCPU = zip(relayStart, relayEnd).map { ProcessSample.cpuPercent(from: $0, to: $1) }.reduce(0, +)
        return Measured(relayCPU: relayCPU, relayRSSMegabytes: Double(peakRSS) / 1_048_576, relayThreads: peakThreads,
                        brokerCPU: ProcessSample.cpuPercent(from: brokerStart, to: brokerEnd), generatorCPU: ownCPU / wall * 100)
    }
}

struct Measured: Sendable {
    var relayCPU: Double
    var relayRSSMegabytes: Double
    var relayThreads: Int
    var brokerCPU: Double
    var generatorCPU: Double
}

struct IdleFigures: Codable, Sendable {
    /// Relay CPU with every topic watched and none live, % of one core (summed over relays).
    var relayCPU: Double
    var brokerCPU: Double
    var relayThreads: Int
}

/// One scenario's figures, as printed and as written to JSON.
struct LoadResult: Codable, Sendable {
    struct Latency: Codable, Sendable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double
        var samples: Int
    }

    var label: String
    var scenario: String
    var relays: Int
    var topics: Int
    var liveTopics: Int
    var viewers: Int
    var slowViewers: Int
    var connected: Int
    var failed: Int
    var rampSeconds: Double
    /// Media latency over the measured window, ms.
    var latency: Latency?
    /// Viewers that got bytes, all of them matching what was published (viewers of topics nobody
    /// publishes get none).
    var byteExactViewers: Int
    var mismatchedViewers: Int
    /// Viewers that read at full speed but were skipped forward anyway.
    var keepingUpViewersWithSkips: Int
    var skippedFragments: Int
    var bytesVerified: Int
    var relayCPU: Double
    var relayRSSMegabytes: Double
    var relayThreads: Int
    var brokerCPU: Double
    var generatorCPU: Double
    var idle: IdleFigures?
    var firstMismatch: String?
    var publisherErrors: [String]
    var date: String

    init(label: String, scenario: LoadScenario, viewers: Int, outcomes: [ViewerOutcome], measured: Measured, idle: IdleFigures?,
         rampSeconds: Double, publisherErrors: [String]) {
        self.label = label
        self.scenario = scenario.name
        relays = scenario.relays
        topics = scenario.topicCount
        liveTopics = scenario.liveTopics
        self.viewers = viewers
        slowViewers = scenario.slowViewers
        connected = outcomes.filter(\.connected).count
        failed = outcomes.count - connected
        self.rampSeconds = rampSeconds
        var merged = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        for outcome in outcomes where !outcome.slow { merged.add(outcome.latency) }
        if merged.totalCount > 0 {
            func ms(_ p: Double) -> Double { Double(merged.valueAtPercentile(p)) / 1000 }
            latency = Latency(p50: ms(50), p90: ms(90), p99: ms(99), max: Double(merged.max) / 1000, samples: Int(merged.totalCount))
        }
        byteExactViewers = outcomes.filter { $0.check.bytesVerified > 0 && $0.check.mismatches == 0 }.count
        mismatchedViewers = outcomes.filter { $0.check.mismatches > 0 }.count
        keepingUpViewersWithSkips = outcomes.filter { !$0.slow && $0.check.skippedFragments > 0 }.count
        skippedFragments = outcomes.reduce(0) { $0 + $1.check.skippedFragments }
        bytesVerified = outcomes.reduce(0) { $0 + $1.check.bytesVerified }
        relayCPU = measured.relayCPU
        relayRSSMegabytes = measured.relayRSSMegabytes
        relayThreads = measured.relayThreads
        brokerCPU = measured.brokerCPU
        generatorCPU = measured.generatorCPU
        self.idle = idle
        firstMismatch = outcomes.lazy.compactMap(\.check.firstMismatch).first
            ?? outcomes.lazy.compactMap(\.error).first.map { "a viewer failed: \($0)" }
        self.publisherErrors = publisherErrors
        date = ISO8601DateFormatter().string(from: Date())
    }

    static let columns: [(title: String, width: Int)] = [
        ("run", 10), ("scenario", 22), ("viewers", 7), ("ok/fail", 10), ("latency p50 / p99", 19), ("max", 9), ("relay CPU", 9),
        ("RSS MB", 7), ("threads", 7), ("broker", 7), ("gen CPU", 7), ("byte-exact", 11), ("wrong bytes", 11), ("skips", 5), ("idle relay + broker", 24),
    ]

    static var header: String { line(columns.map(\.title)) }

    private static func line(_ cells: [String]) -> String {
        zip(cells, columns).enumerated().map { index, pair in
            let (cell, column) = pair
            let padding = String(repeating: " ", count: max(0, column.width - cell.count))
            return index < 2 ? cell + padding : padding + cell
        }.joined(separator: " ")
    }

    var row: String {
        func f(_ value: Double, _ digits: Int = 0) -> String { value.isNaN ? "–" : String(format: "%.\(digits)f", value) }
        let idleText = idle.map { "\(f($0.relayCPU, 1))% + \(f($0.brokerCPU, 1))% (\($0.relayThreads) thr)" } ?? "–"
        return Self.line([
            label, scenario, String(viewers), "\(connected)/\(failed)",
            latency.map { "\(f($0.p50, 1)) / \(f($0.p99, 1)) ms" } ?? "–", latency.map { f($0.max) + " ms" } ?? "–",
            f(relayCPU) + "%", f(relayRSSMegabytes), String(relayThreads), f(brokerCPU) + "%", f(generatorCPU) + "%",
            "\(byteExactViewers)/\(connected)", String(mismatchedViewers), String(keepingUpViewersWithSkips), idleText,
        ])
    }

    /// Appends `results` to the JSON array in `path` (creating it and its folder).
    static func append(_ results: [LoadResult], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var all = (try? JSONDecoder().decode([LoadResult].self, from: Data(contentsOf: url))) ?? []
        all += results
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(all).write(to: url)
    }
}
