// swift-tools-version:6.0
import PackageDescription

// Release builds are -O with whole-module optimisation (SwiftPM's release default); no -Ounchecked.
let package = Package(
    name: "PrithviMPI",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "coordinator", targets: ["Coordinator"]),
        .executable(name: "tileworker", targets: ["TileWorker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(name: "CMPICH", pkgConfig: "mpich", providers: [.apt(["libmpich-dev", "mpich"])]),
        .systemLibrary(name: "CGDAL", pkgConfig: "gdal", providers: [.apt(["libgdal-dev", "gdal-bin"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Vectorised elementwise kernels (exp, erf, GELU, softmax, LayerNorm) with an AVX2+FMA clone.
        .target(name: "CKernels"),
        // The library in layers, each depending only on those before it (the compiler enforces the
        // direction): Support → Tensor → {Model, Geo} → Pipeline → {MPITransport, Serving}.
        .target(name: "Support", dependencies: ["CCurl", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Tensor", dependencies: ["Support", "COpenBLAS", "CKernels"]),
        .target(name: "Model", dependencies: [
            "Tensor", "Support",
            .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "Geo", dependencies: ["Tensor", "Support", "CGDAL", "CKernels"]),
        .target(name: "Pipeline", dependencies: [
            "Model", "Geo", "Tensor", "Support", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "MPITransport", dependencies: [
            "Pipeline", "Geo", "Tensor", "Support", "CMPICH", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Serving", dependencies: [
            "Pipeline", "Geo", "Support",
            .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .executableTarget(
            name: "Coordinator",
            dependencies: [
                "Support", "Tensor", "Model", "Geo", "Pipeline", "MPITransport", "Serving",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "TileWorker",
            dependencies: [
                "MPITransport", "Pipeline", "Model", "Support",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "UnitTests", dependencies: ["CKernels", "Support", "Tensor", "Model", "Geo", "Pipeline", "MPITransport", "Serving", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Support", "Tensor", "Model", "Geo", "Pipeline", "TestSupport"]),
    ]
)
