#!/usr/bin/env bash
# Prints the Package.swift lines for a zipped XCFramework published at URL: its SwiftPM
# checksum (the SHA-256 of the zip, as `swift package compute-checksum` computes it) and the
# `binaryTarget(url:checksum:)`. Runs anywhere with shasum or sha256sum (no Swift needed).
#
#   ios/xcframework-checksum.sh ios/build/UpnDriverCoreFFI-0.1.0.xcframework.zip https://…/UpnDriverCoreFFI-0.1.0.xcframework.zip
set -euo pipefail
zip="${1:?usage: xcframework-checksum.sh ZIP URL}"
url="${2:?usage: xcframework-checksum.sh ZIP URL}"
if [[ ! -f "$zip" ]]; then
    echo "xcframework-checksum.sh: $zip is not a file" >&2
    exit 2
fi
if command -v shasum >/dev/null; then
    checksum=$(shasum -a 256 "$zip" | cut -d ' ' -f 1)
else
    checksum=$(sha256sum "$zip" | cut -d ' ' -f 1)
fi
cat <<LINES
// In ios/Package.swift (or the release package's), replace \`ffiRelease\`:
let ffiRelease: (url: String, checksum: String)? = (
    url: "$url",
    checksum: "$checksum"
)
// which makes the binary target
//     .binaryTarget(name: "UpnDriverCoreFFI", url: "$url", checksum: "$checksum")
LINES
