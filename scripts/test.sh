#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), makes the sample heads, then runs every test.
# Tests that need ../shared/data skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR/bin/make-samples" --out "$BUILD_DIR/samples" --quiet
cd "$BUILD_DIR"
ctest --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-}
