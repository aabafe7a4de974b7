// swift-tools-version:5.9
// UPN Driver Core for iOS: the Rust library as an XCFramework (built by build-xcframework.sh on
// macOS), the UniFFI-generated Swift bindings (module `UpnDriverCore`), a small Swift facade
// (module `UpnDriver`) and a fake core for the app's unit tests (module `UpnDriverTesting`).
// There is no Swift toolchain on the project's CI machine: CI generates the Swift bindings (so
// a change that breaks generation fails) but never compiles this package.

import PackageDescription

// A released XCFramework: `ios/build-xcframework.sh --release URL_BASE` prints the value to put
// here (the zip's URL and its SHA-256, as `swift package compute-checksum` gives it). Left nil,
// the package uses the local build in build/.
let ffiRelease: (url: String, checksum: String)? = nil

// libupn_ffi.a for device and simulator, with the C header and module map of `UpnDriverCoreFFI`
// (the name uniffi.toml gives the FFI module) in Headers/UpnDriverCoreFFI/, so the module map
// never collides with another UniFFI library's in the app.
let ffi: Target =
    if let release = ffiRelease {
        .binaryTarget(name: "UpnDriverCoreFFI", url: release.url, checksum: release.checksum)
    } else {
        .binaryTarget(name: "UpnDriverCoreFFI", path: "build/UpnDriverCoreFFI.xcframework")
    }

let package = Package(
    name: "UpnDriver",
    platforms: [.iOS(.v16)],
    products: [
        .library(name: "UpnDriver", targets: ["UpnDriver", "UpnDriverCore"]),
        // For the app's test target only: FakeDriverCore.
        .library(name: "UpnDriverTesting", targets: ["UpnDriverTesting"]),
    ],
    targets: [
        ffi,
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
        // FakeDriverCore: a scripted DriverCoreProtocol for `DriverSession(core:)` in unit tests.
        .target(
            name: "UpnDriverTesting",
            dependencies: ["UpnDriver", "UpnDriverCore"],
            path: "Sources/UpnDriverTesting"
        ),
    ]
)
