#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root or with sudo), then configures and builds
# tmsplan (Release, ccache) into ${BUILD_DIR:-build}. Idempotent: a second run only rebuilds
# what changed. TMSPLAN_EXTRA_PACKAGES adds Debian packages (tests, benchmarks);
# `scripts/setup.sh --packages-only` installs and stops before building (scripts/bench/common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ccache pkg-config zlib1g-dev libdeflate-dev libpng-dev
  libinsighttoolkit5-dev libeigen3-dev libcli11-dev nlohmann-json3-dev libfmt-dev catch2
  mricron-data help2man ${TMSPLAN_EXTRA_PACKAGES:-})

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

[ "${1:-}" = --packages-only ] && exit 0

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Cache hits across clones in other folders (CI clones anew each run).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=true
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_EXTRA_ARGS:-} >&2
cmake --build "$BUILD_DIR" -j "$(nproc)" >&2
