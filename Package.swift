// swift-tools-version:6.0
import PackageDescription

/// Release builds of the kernel's layers drop the runtime exclusivity checks
/// (each access to a class's stored property cost a call and a TLS lookup:
/// about 0.8 us of a 12.5 us epoll_wait); debug builds, which every test
/// runs, keep them, so a violation still fails the suite.
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

/// Targets follow the layers of DESIGN.md; dependencies point down the list only.
let package = Package(
    name: "runsc",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runsc", targets: ["runsc"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(name: "CShim", path: "Sources/CShim"),
        // Probes of trap mechanisms other than the platform's, for runsc-bench only.
        .target(name: "CTrapProbe", path: "Sources/CTrapProbe"),
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .target(name: "State", dependencies: ["CLZ4", "CZstd", "CShim"], swiftSettings: kernelSettings),
        .target(name: "OCI"),
        .target(name: "Platform", dependencies: ["CShim", "CSeccomp"], swiftSettings: kernelSettings),
        .target(name: "Sentry", dependencies: [
            "State", "Platform", "CShim",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: kernelSettings),
        .target(name: "Boot", dependencies: [
            "Sentry", "OCI", "CSeccomp", "State", "CShim",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "runsc", dependencies: [
            "Boot", "OCI", "State", "Platform",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            // Every `runsc run` starts two processes (the CLI and the sandbox);
            // a statically linked Swift runtime halves each start (10 ms to 5 ms).
            // FoundationEssentials' static archive needs its C shims named.
            .unsafeFlags(["-static-stdlib", "-Xlinker", "-l_FoundationCShims",
                          "-Xlinker", "-l_FoundationCollections"]),
        ]),
        .executableTarget(name: "runsc-bench", dependencies: ["State", "Platform", "CShim", "CTrapProbe", "Sentry", "OCI"],
                          path: "Sources/Bench"),
        .testTarget(name: "StateTests", dependencies: ["State"]),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "PlatformTests", dependencies: ["Platform", "CShim"]),
        // Hostile variants of images' object graphs, shared by the tests that restore them.
        .target(name: "ImageMutation", dependencies: ["State"], path: "Tests/ImageMutation"),
        .testTarget(name: "SentryTests", dependencies: ["Sentry", "State", "ImageMutation"]),
        .testTarget(name: "EndToEndTests", dependencies: ["OCI", "State", "Platform", "ImageMutation"]),
    ]
)
