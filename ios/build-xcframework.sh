#!/usr/bin/env bash
# Builds ios/build/UpnDriverCoreFFI.xcframework (device arm64 + simulator arm64/x86_64, release:
# stripped, thin LTO) and copies the generated Swift bindings into Sources/UpnDriverCore/.
# Needs macOS with Xcode (xcodebuild, lipo) and rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(uname -s)" != "Darwin" ]]; then
    echo "build-xcframework.sh needs macOS with Xcode (xcodebuild, lipo)" >&2
    exit 2
fi

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
mkdir -p "$out/headers" "$out/sim"
cp "$generated/UpnDriverCoreFFI.h" "$out/headers/"
cp "$generated/UpnDriverCoreFFI.modulemap" "$out/headers/module.modulemap"

lipo -create \
    "target/aarch64-apple-ios-sim/release/libupn_ffi.a" \
    "target/x86_64-apple-ios/release/libupn_ffi.a" \
    -output "$out/sim/libupn_ffi.a"

xcodebuild -create-xcframework \
    -library "target/$device/release/libupn_ffi.a" -headers "$out/headers" \
    -library "$out/sim/libupn_ffi.a" -headers "$out/headers" \
    -output "$out/UpnDriverCoreFFI.xcframework"

mkdir -p ios/Sources/UpnDriverCore
cp "$generated/UpnDriverCore.swift" ios/Sources/UpnDriverCore/

echo "ios/build/UpnDriverCoreFFI.xcframework and ios/Sources/UpnDriverCore/UpnDriverCore.swift are ready"
