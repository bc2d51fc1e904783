#!/usr/bin/env bash
# make-bids-demo.sh OUT: a small BIDS dataset from the scanner-like Colin27 copies (build/samples):
# four good scans (one in a session folder) and one deliberately broken (truncated gzip).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
SAMPLES=${SAMPLES:-$here/build/samples}
OUT=$1
mkdir -p "$OUT"
put() { mkdir -p "$OUT/$1/anat"; cp "$SAMPLES/$2.nii.gz" "$OUT/$1/anat/$3_T1w.nii.gz"; }
put sub-01 lps-rot sub-01
put sub-02 pir-aniso sub-02
put sub-03/ses-01 oblique-bias sub-03_ses-01
put sub-04 small-2mm sub-04
mkdir -p "$OUT/sub-05/anat"
head -c 300000 "$SAMPLES/asl-warp.nii.gz" > "$OUT/sub-05/anat/sub-05_T1w.nii.gz"
cat > "$OUT/dataset_description.json" <<JSON
{"Name": "tmsplan demo: scanner-like copies of Colin27 (mricron-data)", "BIDSVersion": "1.8.0", "DatasetType": "raw"}
JSON
echo "$OUT: 5 subjects (sub-05 broken on purpose)"
