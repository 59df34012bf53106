// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "kvb",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kvb-server", targets: ["Server"]),
        .executable(name: "kvb-bench", targets: ["Bench"]),
        .executable(name: "kvb-console", targets: ["Console"]),
        .library(name: "Kafka", targets: ["Kafka"]),
        .library(name: "WebM", targets: ["WebM"]),
        .library(name: "Relay", targets: ["Relay"]),
        .library(name: "ControlPlane", targets: ["ControlPlane"]),
        .library(name: "Trust", targets: ["Trust"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // C bridge to Debian's librdkafka (pkg-config `rdkafka`), including the mock cluster API.
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // C shim for ncursesw: its globals and function-like macros do not import into Swift.
        // epoll, for the kernel-only fan-out floor in kvb-bench.
        .systemLibrary(name: "CEpoll"),
        .systemLibrary(
            name: "CNcurses",
            providers: [.apt(["libncurses-dev"])]
        ),
        // Swift types over librdkafka: configuration, producer, consumer, admin, embedded cluster.
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Streaming WebM (EBML) parsing and segmenting. Pure Swift, no I/O.
        .target(name: "WebM", swiftSettings: swiftSettings),
        // Trust: publish keys, signed watch tokens, signed control-plane records, replay and
        // origin checks. Pure logic over swift-crypto's HMAC, no I/O.
        .target(
            name: "Trust",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The control plane's documents: relay status, operator commands, acknowledgements.
        .target(name: "ControlPlane", swiftSettings: swiftSettings),
        // The control plane on Kafka: signed status documents, commands and acknowledgements,
        // shared by relays and consoles.
        .target(
            name: "ControlLink",
            dependencies: ["ControlPlane", "Kafka", "Trust"],
            swiftSettings: swiftSettings
        ),
        // The console's logic without a terminal: fleet model, keys, screen layout, formatting.
        .target(name: "ConsoleUI", dependencies: ["ControlPlane"], swiftSettings: swiftSettings),
        // The relay core: streams, sessions, fan-out decisions, Kafka message format.
        .target(
            name: "Relay",
            dependencies: [
                "Kafka", "WebM", "ControlPlane", "ControlLink", "Trust",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `kvb-server` executable: HTTP, WebSocket, configuration, the embedded broker.
        .executableTarget(
            name: "Server",
            dependencies: [
                "Kafka", "Relay", "WebM", "Trust", "ControlPlane",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `kvb-console` executable: the operator console in ncurses, over Kafka (the control
        // plane, and the media topics read back as recordings with the relay's archive).
        .executableTarget(
            name: "Console",
            dependencies: [
                "CNcurses", "ConsoleUI", "ControlPlane", "ControlLink", "Kafka", "Relay", "Trust",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load generator's logic without sockets: the replayed stream, and checking a
        // viewer's bytes against it.
        .target(name: "LoadGenerator", swiftSettings: swiftSettings),
        // `kvb-bench`: benchmarks that print numbers (`make bench`): micro-benchmarks, and a load
        // generator that runs relays and a broker and drives them with WebSocket publishers and viewers.
        .executableTarget(
            name: "Bench",
            dependencies: [
                "CEpoll", "Kafka", "Relay", "WebM", "LoadGenerator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "WebMTests", dependencies: ["WebM"], resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka"], swiftSettings: swiftSettings),
        .testTarget(name: "RelayTests", dependencies: ["Kafka", "Relay", "WebM", "ControlPlane"], swiftSettings: swiftSettings),
        .testTarget(name: "LoadGeneratorTests", dependencies: ["LoadGenerator"], swiftSettings: swiftSettings),
        .testTarget(name: "TrustTests", dependencies: ["Trust"], swiftSettings: swiftSettings),
        .testTarget(name: "ConsoleUITests", dependencies: ["ConsoleUI", "ControlPlane"], resources: [.copy("FuzzRegressions")], swiftSettings: swiftSettings),
    ]
)
