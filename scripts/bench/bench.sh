#!/usr/bin/env bash
# scripts/bench/bench.sh: speed and accuracy of every step, with peers, printed as one table.
#   Real data: ../shared/data/philips-mprage (skipped with a message when absent).
#   Known answers: the scanner-like Colin27 copies made by make-samples.
#   Peers (Debian packages, installed when missing), on the same input and scored on the same
#   references as ours, in rows next to ours: dipy median_otsu (skull-strip), TissueClassifierHMRF
#   (segment, scripts/bench/peer_hmrf.py), affine+SyN (cortex-map, scripts/bench/peer_syn.py).
#   FSL (bet, fast) and ANTs (N4BiasFieldCorrection, Atropos, antsRegistration) run too when on
#   the PATH. "wall peer/ours xN": the peer took N times our wall time for the step.
# Timing comes from /usr/bin/time (wall, CPU = user+sys, peak RSS). Nothing here is pass/fail.
set -euo pipefail
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
here=$(cd "$(dirname "$0")/../.." && pwd)
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

. scripts/bench/common.sh  # row STEP DATA WALL CPU MIB FIGURES; timed CMD... (T_WALL T_CPU T_MIB); ratio

PHILIPS=""
[ -f "$DATA/philips-mprage/T1w.nii.gz" ] && PHILIPS="$DATA/philips-mprage" || echo "bench: $DATA absent: real-data rows skipped" >&2

# ---- skull-strip ---------------------------------------------------------------------------
if [ -n "$PHILIPS" ]; then
  d="$WORK/philips"; mkdir -p "$d"
  timed "$BIN/skull-strip" "$PHILIPS/T1w.nii.gz" -o "$d" --threads "$THREADS" --force
  dice=$("$BIN/bench-eval" dice "$d/brain_mask.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz")
  head=$($PY scripts/bench/head_check.py "$PHILIPS/T1w.nii.gz" "$d/head_mask.nii.gz" 0.15 | awk '{printf "%s=%s ", $1, $2}')
  ss_wall=$T_WALL
  read -r cv_raw cv_ours < <($PY scripts/bench/wm_cv.py "$PHILIPS/reference/pve_wm_fast.nii.gz" "$PHILIPS/T1w.nii.gz" "$d/t1w_biascorr.nii.gz")
  row skull-strip philips "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice vs HD-BET $dice; $head; WM CV (in FAST WM) raw $cv_raw -> $cv_ours"
  timed $PY scripts/bench/peer_median_otsu.py "$PHILIPS/T1w.nii.gz" "$WORK/philips_median_otsu.nii.gz"
  pdice=$("$BIN/bench-eval" dice "$WORK/philips_median_otsu.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz")
  row "peer: dipy median_otsu" philips "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice vs HD-BET $pdice; wall peer/ours $(ratio "$ss_wall" "$T_WALL")"
  if command -v bet >/dev/null; then
    if timed bet "$PHILIPS/T1w.nii.gz" "$WORK/philips_bet" -m; then
      row "peer: FSL bet" philips "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice vs HD-BET $("$BIN/bench-eval" dice "$WORK/philips_bet_mask.nii.gz" "$PHILIPS/reference/brainmask_hdbet.nii.gz"); wall peer/ours $(ratio "$ss_wall" "$T_WALL")"
    else row "peer: FSL bet" philips - - - "FAILED (see $WORK/last.err)"; fi
  fi
  if command -v N4BiasFieldCorrection >/dev/null; then  # bias field only, inside our brain mask
    if timed N4BiasFieldCorrection -d 3 -i "$PHILIPS/T1w.nii.gz" -x "$d/brain_mask.nii.gz" -o "$WORK/philips_n4.nii.gz"; then
      row "peer: ANTs N4 (bias)" philips "$T_WALL" "$T_CPU" "$T_MIB" "WM CV (in FAST WM) raw $cv_raw -> $($PY scripts/bench/wm_cv.py "$PHILIPS/reference/pve_wm_fast.nii.gz" "$WORK/philips_n4.nii.gz"); our skull-strip does more than N4 (masks too)"
    else row "peer: ANTs N4 (bias)" philips - - - "FAILED (see $WORK/last.err)"; fi
  fi
  mkdir -p "$WORK/philips-dicom"
  timed "$BIN/skull-strip" "$PHILIPS/dicom" -o "$WORK/philips-dicom" --threads "$THREADS" --force
  same=$("$BIN/bench-eval" dice "$d/brain_mask.nii.gz" "$WORK/philips-dicom/brain_mask.nii.gz")
  row skull-strip philips-dicom "$T_WALL" "$T_CPU" "$T_MIB" "brain Dice DICOM vs NIfTI input $same"
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
for extra in scripts/bench/pipeline.sh scripts/bench/efield.sh scripts/bench/efield_repro.sh scripts/bench/robustness.sh; do
  if [ -x "$extra" ]; then
    BIN="$BIN" SAMPLES="$SAMPLES" DATA="$DATA" WORK="$WORK" THREADS="$THREADS" ROWS="$ROWS" "$extra"
  fi
done
[ "${SKIP_SEGMENT_SIM:-0}" = 1 ] || BUILD_DIR="${BUILD_DIR:-build}" BENCH_DIR="$WORK/segment-sim" THREADS="$THREADS" scripts/bench/segment_sim.sh | tee "$WORK/segment_sim.txt"  # simulated heads with truth, with peers (issue 15)

echo
printf '%-24s %-22s %7s %7s %8s  %s\n' step data "wall s" "cpu s" "peak MiB" figures
printf '%-24s %-22s %7s %7s %8s  %s\n' ---- ---- ------ ----- -------- -------
while IFS=$'\t' read -r step data wall cpu mib figs; do
  printf '%-24s %-22s %7s %7s %8s  %s\n' "$step" "$data" "$wall" "$cpu" "$mib" "$figs"
done < "$ROWS"
echo "(threads $THREADS; $(nproc) cores; load average at the start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg); bench ${SECONDS} s; $(date -u +%Y-%m-%dT%H:%MZ))"
echo "(wall peer/ours xN: the peer's wall time is N times ours for the same step; peers are mostly single-threaded)"
