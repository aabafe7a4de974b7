// swift-tools-version:5.9
// UPN Driver Core for iOS: the Rust library as an XCFramework (built by build-xcframework.sh on
// macOS), the UniFFI-generated Swift bindings (module `UpnDriverCore`), and a small Swift facade
// (module `UpnDriver`). There is no Swift toolchain on the project's CI machine: CI generates
// the Swift bindings (so a change that breaks generation fails) but never compiles this package.

import PackageDescription

let package = Package(
    name: "UpnDriver",
    platforms: [.iOS(.v16)],
    products: [
        .library(name: "UpnDriver", targets: ["UpnDriver", "UpnDriverCore"]),
    ],
    targets: [
        // libupn_ffi.a for device and simulator, with the C header and module map of
        // `UpnDriverCoreFFI` (the name uniffi.toml gives the FFI module).
        .binaryTarget(
            name: "UpnDriverCoreFFI",
            path: "build/UpnDriverCoreFFI.xcframework"
        ),
        // The generated bindings: build-xcframework.sh copies UpnDriverCore.swift here.
        .target(
            name: "UpnDriverCore",
            dependencies: ["UpnDriverCoreFFI"],
            path: "Sources/UpnDriverCore"
        ),
        // The facade: async functions, an AsyncStream of updates, NWPathMonitor, BGProcessingTask.
        .target(
            name: "UpnDriver",
            dependencies: ["UpnDriverCore"],
            path: "Sources/UpnDriver"
        ),
    ]
)
