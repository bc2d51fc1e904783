#!/usr/bin/env bash
# Installs what is missing, builds, makes the built-in sample (a scanner-like copy of the
# Colin27 head from Debian's mricron-data: tilted, stored LPS-oblique, with a bias field and
# noise) and plans it end to end into out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR/bin/make-samples" --out "$BUILD_DIR/samples" --quiet
SAMPLE=${1:-$BUILD_DIR/samples/oblique-bias.nii.gz}
OUT=${2:-out/demo}
scripts/plan-subject.sh "$SAMPLE" "$OUT"
echo
echo "demo: targets and coil poses (RAS mm of the sample; $OUT/plan/markers.tsv):"
cut -f1-7 "$OUT/plan/markers.tsv"
echo
echo "demo: the plan a clinician reads: $OUT/plan/report.html"
echo "demo: every output of the five steps is in $OUT (see docs/pipeline.md)"
