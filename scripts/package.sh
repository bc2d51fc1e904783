#!/usr/bin/env bash
# package.sh [OUTDIR]: builds tmsplan (scripts/setup.sh, unless --no-build) and makes the Debian
# package with CPack into OUTDIR (default dist/). Prints the .deb's path on stdout.
#   scripts/package.sh                      # -> dist/tmsplan_0.1.0-1_amd64.deb
#   sudo apt install ./dist/tmsplan_*.deb    # tools on the PATH, data in /usr/share/tmsplan
# Runtime dependencies are computed by dpkg-shlibdeps (ITK 5.2, GDCM, libdeflate, libpng, zlib, ...)
# plus mricron-data (template, atlases); see CMakeLists.txt and docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
if [ "${1:-}" = --no-build ]; then BUILD=0; shift; fi
OUTDIR=${1:-dist}
BUILD_DIR=${BUILD_DIR:-build}
if [ "$BUILD" = 1 ]; then
  scripts/setup.sh
fi
[ -f "$BUILD_DIR/CPackConfig.cmake" ] || { echo "package: error: no CPack configuration ($BUILD_DIR/CPackConfig.cmake): run scripts/setup.sh" >&2; exit 1; }
command -v dpkg-shlibdeps >/dev/null || { echo "package: error: dpkg-shlibdeps missing: apt-get install dpkg-dev" >&2; exit 1; }
ls "$BUILD_DIR"/man/*.1.gz >/dev/null 2>&1 || { echo "package: error: no man pages in $BUILD_DIR/man: apt-get install help2man, then scripts/setup.sh" >&2; exit 1; }
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
work=$(mktemp -d "$OUTDIR/.cpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$work" >&2 \
  || { echo "package: error: cpack failed (see above)" >&2; exit 1; }
deb=$(ls "$work"/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "package: error: cpack made no .deb ($work)" >&2; exit 1; }
mv -f "$deb" "$OUTDIR/$(basename "$deb")"   # one rename: no half-written package in OUTDIR
echo "package: $(dpkg-deb -f "$OUTDIR/$(basename "$deb")" Package Version Depends | tr '\n' ' ')" >&2
echo "$OUTDIR/$(basename "$deb")"
