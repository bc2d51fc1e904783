#!/usr/bin/env bash
# scripts/bench/segment.sh: accuracy, speed and memory of `segment`, with dipy's TissueClassifierHMRF as a peer.
#   1. Philips MPRAGE (../shared/data) with the HD-BET mask: Dice GM/WM against FSL FAST (> 0.5).
#   2. The same after our own skull-strip (when build/bin/skull-strip exists).
#   3. Colin27 and its scanner-like copies: each copy's labels brought back to the original grid
#      through the known transform, Dice against the original's labels.
#   4. dipy TissueClassifierHMRF on the Philips scan (same mask): Dice against FAST and seconds.
# Environment: BUILD_DIR (default build), TMSPLAN_SHARED_DATA, BENCH_DIR (default build/bench-segment),
# THREADS (default 2), SEGMENT_ARGS (extra options for our segment), SKIP_DIPY=1 to skip the peer
# (it takes minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
# Python dependencies from Debian, installed when missing (dipy only serves the peer rows).
. "$here/scripts/bench/common.sh"
bench_requires python3-numpy python3-nibabel python3-dipy time
BIN=${BUILD_DIR:-build}/bin
SAMPLES=${BUILD_DIR:-build}/samples
DATA=${TMSPLAN_SHARED_DATA:-$here/../shared/data}
WORK=${BENCH_DIR:-${BUILD_DIR:-build}/bench-segment}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
EVAL="$PY $here/scripts/bench/segment_eval.py"
TEMPLATES=/usr/share/mricron/templates
mkdir -p "$WORK"

# timed CMD...: runs CMD under /usr/bin/time -v; prints "seconds S, peak MiB M"
timed() {
  local tf; tf=$(mktemp)
  if ! /usr/bin/time -v -o "$tf" "$@" > "$WORK/last.out" 2> "$WORK/last.err"; then
    echo "bench/segment.sh: failed: $*" >&2; cat "$WORK/last.err" >&2; rm -f "$tf"; return 1
  fi
  local wall kb
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$tf")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
  rm -f "$tf"
  echo "seconds $wall, peak MiB $((kb / 1024))"
}

seg() {  # seg T1 MASK OUT
  mkdir -p "$3"
  timed "$BIN/segment" --t1 "$1" --mask "$2" -o "$3" --threads "$THREADS" --force --quiet ${SEGMENT_ARGS:-}
}

PHILIPS="$DATA/philips-mprage"
if [ -f "$PHILIPS/T1w.nii.gz" ]; then
  echo "== Philips MPRAGE, HD-BET mask ($THREADS threads)"
  echo "segment: $(seg "$PHILIPS/T1w.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz" "$WORK/philips")"
  $EVAL dice-fast "$WORK/philips" "$PHILIPS/reference"
  $EVAL disagree "$WORK/philips" "$PHILIPS/T1w.nii.gz" "$PHILIPS/reference"
  if [ -x "$BIN/skull-strip" ]; then
    echo "== Philips MPRAGE, our skull-strip outputs (t1w_biascorr + brain_mask)"
    mkdir -p "$WORK/philips-ss"
    if timed "$BIN/skull-strip" "$PHILIPS/T1w.nii.gz" -o "$WORK/philips-ss" --threads "$THREADS" --force --quiet \
      > "$WORK/ss.time"; then
      echo "skull-strip: $(cat "$WORK/ss.time")"
      echo "segment: $(seg "$WORK/philips-ss/t1w_biascorr.nii.gz" "$WORK/philips-ss/brain_mask.nii.gz" "$WORK/philips-ss")"
      $EVAL dice-fast "$WORK/philips-ss" "$PHILIPS/reference"
    fi
  fi
  if [ "${SKIP_DIPY:-0}" != 1 ]; then
    echo "== peer: dipy TissueClassifierHMRF on the same T1 and mask (single-threaded Python/Cython)"
    /usr/bin/time -v -o "$WORK/dipy.time" $EVAL dipy "$PHILIPS/T1w.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz" \
      "$PHILIPS/reference"
    awk -F': ' '/Elapsed/ {print "dipy process wall " $2} /Maximum resident/ {print "dipy peak MiB " int($2 / 1024)}' "$WORK/dipy.time"
  fi
else
  echo "bench/segment.sh: $PHILIPS absent: Philips rows skipped" >&2
fi

if [ -f "$SAMPLES/copies.json" ] && [ -f "$TEMPLATES/ch2.nii.gz" ]; then
  echo "== Colin27 copies: labels brought back to the original grid, Dice against the original's"
  c="$WORK/colin"; mkdir -p "$c"
  $PY -c "
import nibabel as nib, numpy as np
b = nib.load('$TEMPLATES/ch2bet.nii.gz')
nib.save(nib.Nifti1Image((np.asanyarray(b.dataobj) > 0).astype(np.uint8), b.affine), '$c/mask_original.nii.gz')"
  echo "original: $(seg "$TEMPLATES/ch2.nii.gz" "$c/mask_original.nii.gz" "$c/original")"
  for n in $($PY -c "import json; print(' '.join(c['name'] for c in json.load(open('$SAMPLES/copies.json'))['copies']))"); do
    $EVAL copy-mask "$SAMPLES/copies.json" "$n" "$c/mask_original.nii.gz" "$c/mask_$n.nii.gz"
    t=$(seg "$SAMPLES/$n.nii.gz" "$c/mask_$n.nii.gz" "$c/$n")
    echo "$($EVAL copy-dice "$SAMPLES/copies.json" "$n" "$c/original/dseg.nii.gz" "$c/$n/dseg.nii.gz"); $t"
  done
else
  echo "bench/segment.sh: Colin27 samples absent (run $BIN/make-samples --out $SAMPLES): skipped" >&2
fi
