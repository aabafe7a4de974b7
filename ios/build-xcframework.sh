#!/usr/bin/env bash
# Builds ios/build/UpnDriverCoreFFI.xcframework (device arm64 + simulator arm64/x86_64, release:
# stripped, thin LTO), copies the generated Swift bindings into Sources/UpnDriverCore/, and zips
# the XCFramework with its SwiftPM checksum for a remote `binaryTarget(url:checksum:)`.
# Needs macOS with Xcode (xcodebuild, lipo, ditto) and rustup.
#
#   ios/build-xcframework.sh                      # local: Package.swift uses build/…xcframework
#   ios/build-xcframework.sh --release URL_BASE   # also prints the binaryTarget lines for URL_BASE/<zip>
set -euo pipefail
cd "$(dirname "$0")/.."

url_base=""
if [[ "${1:-}" == "--release" ]]; then
    url_base="${2:?--release needs the URL the zip will be published under}"
fi

if [[ "$(uname -s)" != "Darwin" ]]; then
    echo "build-xcframework.sh needs macOS with Xcode (xcodebuild, lipo, ditto)" >&2
    exit 2
fi

module=UpnDriverCoreFFI
device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "$device" "${simulators[@]}"
for target in "$device" "${simulators[@]}"; do
    cargo build --release -p upn-ffi --target "$target"
done

# Swift bindings (module UpnDriverCore) and the FFI header + module map (UpnDriverCoreFFI).
cargo xtask bindings
generated=target/bindings/swift

out=ios/build
rm -rf "$out"
# The header and module map go in a folder named after the module inside Headers/, never as
# Headers/module.modulemap: Xcode copies every static XCFramework's Headers/ into one include
# folder, where two UniFFI libraries' root module maps would overwrite each other.
mkdir -p "$out/headers/$module" "$out/sim"
cp "$generated/$module.h" "$out/headers/$module/"
cp "$generated/$module.modulemap" "$out/headers/$module/module.modulemap"

lipo -create \
    "target/aarch64-apple-ios-sim/release/libupn_ffi.a" \
    "target/x86_64-apple-ios/release/libupn_ffi.a" \
    -output "$out/sim/libupn_ffi.a"

xcodebuild -create-xcframework \
    -library "target/$device/release/libupn_ffi.a" -headers "$out/headers" \
    -library "$out/sim/libupn_ffi.a" -headers "$out/headers" \
    -output "$out/$module.xcframework"

mkdir -p ios/Sources/UpnDriverCore
cp "$generated/UpnDriverCore.swift" ios/Sources/UpnDriverCore/

echo "ios/build/$module.xcframework and ios/Sources/UpnDriverCore/UpnDriverCore.swift are ready"

# The zip SwiftPM downloads, and its checksum (what `swift package compute-checksum` prints:
# the SHA-256 of the zip).
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
zip="$out/$module-$version.xcframework.zip"
(cd "$out" && ditto -c -k --sequesterRsrc --keepParent "$module.xcframework" "$(basename "$zip")")
if [[ -n "$url_base" ]]; then
    ios/xcframework-checksum.sh "$zip" "${url_base%/}/$(basename "$zip")"
fi
