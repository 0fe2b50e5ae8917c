// swift-tools-version:6.0
import Foundation
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "breakerd",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BreakerCore", targets: ["BreakerCore"]),
        .library(name: "BreakerStore", targets: ["BreakerStore"]),
        .library(name: "RESP", targets: ["RESP"]),
        .library(name: "BreakerServer", targets: ["BreakerServer"]),
        .executable(name: "breakerd", targets: ["breakerd"]),
        .library(name: "BreakerClient", targets: ["BreakerClient"]),
        .executable(name: "breakerctl", targets: ["breakerctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C: the system hiredis (Debian's libhiredis-dev). Only the Hiredis target imports it.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // The Redis client: hiredis's formatter and reader on SwiftNIO connections (and a blocking
        // wrapper over one hiredis context for the few who need one).
        .target(
            name: "Hiredis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Pure values: policy, states, decisions, names, keys, and the reference model of the rules.
        .target(
            name: "BreakerCore",
            swiftSettings: swiftSettings
        ),
        // The breaker rules as one Redis Functions library, and the Redis-backed store that calls it.
        .target(
            name: "BreakerStore",
            dependencies: [
                "BreakerCore", "Hiredis",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [
                .embedInCode("Lua/breakerd.lua"),
            ],
            swiftSettings: swiftSettings
        ),
        // RESP2/RESP3: the request decoder (inline and multibulk, with limits), reply values and encoder.
        .target(
            name: "RESP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The TCP server: connections, command dispatch, roles, pub/sub fan-out, degraded mode.
        .target(
            name: "BreakerServer",
            dependencies: [
                "BreakerCore", "BreakerStore", "Hiredis", "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP for operators: /metrics (Prometheus), /api/breakers, /healthz and the status page.
        .target(
            name: "BreakerHTTP",
            dependencies: [
                "BreakerCore", "BreakerStore", "BreakerServer", "Hiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Swift client library replicas use: acquire/report, run(), fail-over, events.
        .target(
            name: "BreakerClient",
            dependencies: [
                "BreakerCore", "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operators' command-line tool.
        .executableTarget(
            name: "breakerctl",
            dependencies: [
                "BreakerClient", "BreakerCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // A runnable replica that calls a flaky fake dependency through BreakerClient.
        .executableTarget(
            name: "example-replica",
            dependencies: ["BreakerClient"],
            path: "examples/swift-replica",
            swiftSettings: swiftSettings
        ),
        // The executable: flags and environment -> logger -> service group.
        .executableTarget(
            name: "breakerd",
            dependencies: [
                "BreakerServer", "BreakerHTTP", "BreakerStore", "BreakerCore", "Hiredis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: a private redis-server on a free loopback port.
        .target(
            name: "RedisTestSupport",
            dependencies: ["Hiredis"],
            path: "Tests/RedisTestSupport",
            swiftSettings: swiftSettings
        ),
        // Test support: breakerd in-process against the test Redis, a raw RESP client, a process runner.
        .target(
            name: "BreakerServerTestSupport",
            dependencies: [
                "BreakerServer", "BreakerStore", "BreakerCore", "Hiredis", "RedisTestSupport", "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/BreakerServerTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HiredisTests",
            dependencies: [
                "Hiredis", "RedisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BreakerCoreTests",
            dependencies: ["BreakerCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BreakerStoreTests",
            dependencies: ["BreakerStore", "BreakerCore", "Hiredis", "RedisTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BreakerServerTests",
            dependencies: [
                "BreakerServer", "BreakerStore", "BreakerCore", "Hiredis", "RedisTestSupport", "RESP",
                "BreakerServerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BreakerHTTPTests",
            dependencies: [
                "BreakerHTTP", "BreakerServer", "BreakerStore", "BreakerCore", "Hiredis", "RedisTestSupport", "RESP",
                "BreakerServerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BreakerClientTests",
            dependencies: [
                "BreakerClient", "BreakerServer", "BreakerStore", "BreakerCore", "Hiredis", "RedisTestSupport",
                "BreakerServerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Dockerfile and docker-compose.yml, checked for what they say (no Docker engine here).
        .testTarget(
            name: "DeploymentTests",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// The load generator is built only for benchmarking (scripts/bench sets BREAKERD_BENCH=1), so the
// test build never compiles it or its histogram dependency.
if ProcessInfo.processInfo.environment["BREAKERD_BENCH"] != nil {
    package.dependencies.append(.package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"))
    package.targets.append(
        .executableTarget(
            name: "breaker-bench",
            dependencies: [
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/breaker-bench",
            swiftSettings: swiftSettings
        ))
}

// The libFuzzer targets (Fuzz/) are built only by scripts/fuzz (BREAKERD_FUZZ=1), with
// -sanitize=fuzzer in their own scratch path, so the normal and test builds never see them.
if ProcessInfo.processInfo.environment["BREAKERD_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "fuzz-resp-decoder",
            dependencies: ["RESP", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/resp-decoder",
            swiftSettings: swiftSettings
        ))
    package.targets.append(
        .executableTarget(
            name: "fuzz-dispatcher",
            dependencies: [
                "BreakerServer", "BreakerStore", "Hiredis", "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/dispatcher",
            swiftSettings: swiftSettings
        ))
}
