// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "rollupd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rollupd", targets: ["rollupd"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["YAML"]),
        // Already pulled in by swift-configuration's YAML trait; used directly only to reject unknown keys.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Tests only: the webhook receiver the alert tests start on 127.0.0.1 (an HTTP server
        // that is not the daemon's own SwiftNIO listener).
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        // Budget alert webhooks: HTTP client with timeouts, and HMAC signing.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // async-http-client's own dependency; named for its ByteBuffer and HTTP types, and the
        // /metrics and /healthz listener.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C shims: the system libraries, found through pkg-config.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),

        // A thin, typed layer over libpq.
        .target(name: "Postgres", dependencies: ["CLibPQ"], swiftSettings: strict),

        // Pure decisions: configuration, backoff, scheduling. No I/O beyond reading config values.
        .target(
            name: "RollupdCore",
            dependencies: [
                "Postgres",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Everything rollupd says to PostgreSQL: migrations, the rollup pass, leader lock, status.
        .target(
            name: "RollupdStore",
            dependencies: ["Postgres", "RollupdCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        // sd_notify and the log handler systemd/journald reads.
        .target(
            name: "Systemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        // Long-running services that carry out what the store and core decide.
        .target(
            name: "RollupdDaemon",
            dependencies: [
                "RollupdCore", "RollupdStore", "Systemd", "Postgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // The thin executable: command-line parsing and bootstrapping.
        .executableTarget(
            name: "rollupd",
            dependencies: [
                "RollupdCore", "RollupdStore", "RollupdDaemon", "Systemd", "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        // bench/steady-state.sh's memory floor: rollupd's stack without rollupd (never shipped).
        .executableTarget(
            name: "rss-floor",
            dependencies: [
                "CLibPQ", "CSystemd",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "bench/floor",
            swiftSettings: strict
        ),

        // Tier 1: pure unit tests, no I/O.
        .testTarget(
            name: "CoreTests",
            dependencies: ["RollupdCore", "Systemd", "Postgres", .product(name: "Configuration", package: "swift-configuration")],
            swiftSettings: strict
        ),
        // Tiers 2 and 3: services and the engine against the real PostgreSQL the test command starts.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Postgres", "RollupdCore", "RollupdStore", "RollupdDaemon", "Systemd",
                .product(name: "Logging", package: "swift-log"),
                // The test's own webhook receiver, a real HTTP server on 127.0.0.1.
                .product(name: "FlyingFox", package: "FlyingFox"),
            ],
            // Read from the repository at run time (TestEnvironment.repoRoot), not bundled.
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
    ]
)
