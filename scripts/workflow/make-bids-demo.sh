#!/usr/bin/env bash
# make-bids-demo.sh [--small] OUT: a small BIDS dataset from the scanner-like Colin27 copies
# (make-samples; SAMPLES, default <repo>/${BUILD_DIR:-build}/samples).
#   default: four good scans (one in a session folder) and one deliberately broken (truncated gzip);
#   --small: the 2 mm copy twice (sub-01, and sub-02 in a session folder) and the broken sub-03,
#            for the cluster test (tests/cluster/cluster_test.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
small=0
if [ "${1:-}" = --small ]; then small=1; shift; fi
[ $# -eq 1 ] || { echo "usage: make-bids-demo.sh [--small] OUT" >&2; exit 2; }
case ${BUILD_DIR:-build} in /*) build=$BUILD_DIR ;; *) build=$here/${BUILD_DIR:-build} ;; esac
SAMPLES=${SAMPLES:-$build/samples}
OUT=$1
[ -f "$SAMPLES/small-2mm.nii.gz" ] || { echo "make-bids-demo: error: samples missing ($SAMPLES): run make-samples --out $SAMPLES" >&2; exit 1; }
mkdir -p "$OUT"
put() { mkdir -p "$OUT/$1/anat"; cp "$SAMPLES/$2.nii.gz" "$OUT/$1/anat/$3_T1w.nii.gz"; }
broken() { mkdir -p "$OUT/$1/anat"; head -c 300000 "$SAMPLES/asl-warp.nii.gz" > "$OUT/$1/anat/$1_T1w.nii.gz"; }
if [ $small = 1 ]; then
  put sub-01 small-2mm sub-01
  put sub-02/ses-01 small-2mm sub-02_ses-01
  broken sub-03
  n="3 subjects (sub-03 broken on purpose)"
else
  put sub-01 lps-rot sub-01
  put sub-02 pir-aniso sub-02
  put sub-03/ses-01 oblique-bias sub-03_ses-01
  put sub-04 small-2mm sub-04
  broken sub-05
  n="5 subjects (sub-05 broken on purpose)"
fi
cat > "$OUT/dataset_description.json" <<JSON
{"Name": "tmsplan demo: scanner-like copies of Colin27 (mricron-data)", "BIDSVersion": "1.8.0", "DatasetType": "raw"}
JSON
echo "$OUT: $n"
