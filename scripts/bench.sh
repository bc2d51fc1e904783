#!/usr/bin/env bash
# bench.sh [--quick]: speed and accuracy of every step, with peers, printed as one table.
#   Real data: ../shared/data/philips-mprage (skipped with a message when absent).
#   Known answers: the scanner-like Colin27 copies made by make-samples.
#   Peers (Debian packages, installed when missing): dipy median_otsu, TissueClassifierHMRF,
#   affine+SyN. FSL/ANTs are run too when they are on the PATH.
# Timing comes from /usr/bin/time (wall, CPU = user+sys, peak RSS). Nothing here is pass/fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
TMSPLAN_EXTRA_PACKAGES="python3-dipy python3-nibabel python3-scipy time bc" scripts/setup.sh
BIN=${BUILD_DIR:-build}/bin
SAMPLES=${BUILD_DIR:-build}/samples
"$BIN/make-samples" --out "$SAMPLES" --quiet
DATA=${TMSPLAN_SHARED_DATA:-$here/../shared/data}
WORK=${BENCH_DIR:-$here/out/bench}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
mkdir -p "$WORK"
ROWS="$WORK/rows.tsv"
: > "$ROWS"

# row STEP DATA WALL CPU MIB FIGURES
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$ROWS"; }
# timed OUTVAR CMD...: runs CMD under /usr/bin/time; sets T_WALL T_CPU T_MIB
timed() {
  local tf; tf=$(mktemp)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || {
    echo "bench: failed: $*" >&2; cat "$WORK/last.err" >&2; rm -f "$tf"; return 1; }
  read -r T_WALL u s kb < "$tf"; rm -f "$tf"
  T_CPU=$(echo "$u + $s" | bc); T_MIB=$((kb / 1024))
}

PHILIPS=""
[ -f "$DATA/philips-mprage/T1w.nii.gz" ] && PHILIPS="$DATA/philips-mprage" || echo "bench: $DATA absent: real-data rows skipped" >&2

# ---- skull-strip ---------------------------------------------------------------------------
if [ -n "$PHILIPS" ]; then
  d="$WORK/philips"; mkdir -p "$d"
  timed "$BIN/skull-strip" "$PHILIPS/T1w.nii.gz" -o "$d" --threads "$THREADS" --force
  dice=$("$BIN/bench-eval" dice "$d/brain_mask.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz")
  head=$($PY scripts/bench/head_check.py "$PHILIPS/T1w.nii.gz" "$d/head_mask.nii.gz" 0.15 | awk '{printf "%s=%s ", $1, $2}')
  row skull-strip philips "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice vs HD-BET $dice; $head"
  mkdir -p "$WORK/philips-dicom"
  timed "$BIN/skull-strip" "$PHILIPS/dicom" -o "$WORK/philips-dicom" --threads "$THREADS" --force
  same=$("$BIN/bench-eval" dice "$d/brain_mask.nii.gz" "$WORK/philips-dicom/brain_mask.nii.gz")
  row skull-strip philips-dicom "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice DICOM vs NIfTI input $same"
  timed $PY scripts/bench/peer_median_otsu.py "$PHILIPS/T1w.nii.gz" "$WORK/philips_median_otsu.nii.gz"
  pdice=$("$BIN/bench-eval" dice "$WORK/philips_median_otsu.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz")
  row "peer: dipy median_otsu" philips "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice vs HD-BET $pdice"
  if command -v bet >/dev/null; then
    timed bet "$PHILIPS/T1w.nii.gz" "$WORK/philips_bet" -m
    row "peer: FSL bet" philips "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice vs HD-BET $("$BIN/bench-eval" dice "$WORK/philips_bet_mask.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz")"
  fi
fi
c="$WORK/colin"; mkdir -p "$c"
timed "$BIN/skull-strip" /usr/share/mricron/templates/ch2.nii.gz -o "$c" --threads "$THREADS" --force
row skull-strip colin27 "$T_WALL" "$T_CPU" "$T_MIB" "head: $($PY scripts/bench/head_check.py /usr/share/mricron/templates/ch2.nii.gz "$c/head_mask.nii.gz" 0.15 | awk '{printf "%s=%s ", $1, $2}')"
for copy in $(jq -r '.copies[].name' "$SAMPLES/copies.json" 2>/dev/null || $PY -c "import json;print(' '.join(c['name'] for c in json.load(open('$SAMPLES/copies.json'))['copies']))"); do
  o="$WORK/copy-$copy"; mkdir -p "$o"
  timed "$BIN/skull-strip" "$SAMPLES/$copy.nii.gz" -o "$o" --threads "$THREADS" --force
  b=$("$BIN/bench-eval" copy-dice "$SAMPLES/copies.json" "$copy" "$c/brain_mask.nii.gz" "$o/brain_mask.nii.gz" | awk '{print $2}')
  h=$("$BIN/bench-eval" copy-dice "$SAMPLES/copies.json" "$copy" "$c/head_mask.nii.gz" "$o/head_mask.nii.gz" | awk '{print $2}')
  row skull-strip "copy $copy" "$T_WALL" "$T_CPU" "$T_MIB" "Dice vs original brought back: brain $b head $h"
done

# ---- later steps: their own evaluation scripts add rows when present ------------------------
for extra in scripts/bench/pipeline.sh; do
  if [ -x "$extra" ]; then
    BIN="$BIN" SAMPLES="$SAMPLES" DATA="$DATA" WORK="$WORK" THREADS="$THREADS" ROWS="$ROWS" "$extra"
  fi
done

echo
printf '%-24s %-22s %7s %7s %8s  %s\n' step data "wall s" "cpu s" "peak MiB" figures
printf '%-24s %-22s %7s %7s %8s  %s\n' ---- ---- ------ ----- -------- -------
while IFS=$'\t' read -r step data wall cpu mib figs; do
  printf '%-24s %-22s %7s %7s %8s  %s\n' "$step" "$data" "$wall" "$cpu" "$mib" "$figs"
done < "$ROWS"
echo "(threads $THREADS; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ))"
