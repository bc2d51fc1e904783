#!/usr/bin/env bash
# segment_sim.sh: segment on simulated heads with known partial-volume truth (issue 15), with peers.
#   Cases: data/samples/segment_sim.json (MPRAGE and spoiled gradient echo at 1.5 T and 3 T, SNR,
#   bias, 0.8-1.5 mm, a 0.5x0.5x1.5 mm clinical grid, lesion heads), made by segment_sim.py from the
#   FAST maps of the Philips scan in ../shared/data (skipped with a message when absent).
#   Rows: ours; dipy TissueClassifierHMRF (scripts/bench/peer_hmrf.py, when python3-dipy is
#   installed); FSL fast and ANTs Atropos when on the PATH. Per case: Dice at 0.5 and mean absolute
#   fraction error per class, GM/WM volume ratio against the truth; lesion heads: cavity core
#   labelled CSF. Nothing here is pass/fail.
# Environment: BUILD_DIR (default build), TMSPLAN_SHARED_DATA, BENCH_DIR (default
# $BUILD_DIR/bench-segment-sim), THREADS (2), SEGMENT (our binary), SEGMENT_ARGS (extra options),
# CASES (names, default all), SKIP_PEERS=1 (ours only), SKIP_OURS=1 (peers only), DIPY_ITER (dipy's
# HMRF iterations, default 10: at its tutorial's 20 it takes about a minute of CPU per 1 mm case,
# too slow to run on every case; the row says how many were run), PLAN_LESIONS=1 (also the whole
# pipeline, scripts/plan-subject.sh --no-efield, on the real Philips T1 with and without each
# lesion painted in by segment_sim.py real-lesion, and the targets compared with aniso.sh compare:
# about 80 s of CPU per head, off by default).
# Times: wall and CPU (user + system) seconds, peak MiB; wall times on a loaded machine are not
# speed figures, CPU seconds are.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
# Python dependencies from Debian, installed when missing (dipy only serves the peer rows).
. "$here/scripts/bench/common.sh"
bench_requires python3-numpy python3-scipy python3-nibabel python3-dipy time
BIN=${BUILD_DIR:-build}/bin
SEGMENT=${SEGMENT:-$BIN/segment}
DATA=${TMSPLAN_SHARED_DATA:-$here/../shared/data}
WORK=${BENCH_DIR:-${BUILD_DIR:-build}/bench-segment-sim}
THREADS=${THREADS:-2}
DIPY_ITER=${DIPY_ITER:-10}
PY=/usr/bin/python3
SIM="$PY $here/scripts/bench/segment_sim.py"
SPEC=$here/data/samples/segment_sim.json
if [ ! -f "$DATA/philips-mprage/reference/pve_gm_fast.nii.gz" ]; then
  echo "segment_sim: $DATA absent: simulated rows skipped" >&2
  exit 0
fi
mkdir -p "$WORK"
ALL=$($PY -c "import json; s = json.load(open('$SPEC')); print(' '.join(c['name'] for c in s['cases'] + s.get('contrast_cases', []) + s['clinical_cases'] + s['lesions']))")
CASES=${CASES:-$ALL}
missing=""
for n in $CASES; do [ -f "$WORK/cases/$n/t1.nii.gz" ] || missing="$missing $n"; done
[ -z "$missing" ] || $SIM make "$SPEC" "$DATA" "$WORK/cases" $missing

# timed CMD...: wall seconds and peak MiB of CMD
timed() {
  local tf; tf=$(mktemp)
  if ! /usr/bin/time -v -o "$tf" "$@" > "$WORK/last.out" 2> "$WORK/last.err"; then
    echo "segment_sim: failed: $*" >&2; tail -3 "$WORK/last.err" >&2; rm -f "$tf"; echo "FAILED"; return 0
  fi
  awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; w = s}
              /User time|System time/ {c += $2}
              /Maximum resident set size/ {m = int($2 / 1024)} END {printf "%.1f s wall, %.1f s CPU, %d MiB", w, c, m}' "$tf"
  rm -f "$tf"
}

echo "== segment on simulated heads (load $(cut -d' ' -f1-3 /proc/loadavg), $THREADS threads)"
for n in $CASES; do
  c="$WORK/cases/$n"; o="$WORK/ours/$n"
  if [ "${SKIP_OURS:-0}" != 1 ]; then
    mkdir -p "$o"
    t=$(timed "$SEGMENT" --t1 "$c/t1.nii.gz" --mask "$c/mask.nii.gz" -o "$o" --threads "$THREADS" --force --quiet ${SEGMENT_ARGS:-})
    echo "ours  $($SIM eval "$c" "$o"); $t"
    if [ -f "$c/lesion_core.nii.gz" ]; then echo "ours  $($SIM lesion "$c" "$o")"; fi
  fi
  if [ "${SKIP_PEERS:-0}" != 1 ]; then
    if $PY -c "import dipy" 2>/dev/null; then
      p="$WORK/dipy/$n"; mkdir -p "$p"
      t=$(timed $PY scripts/bench/peer_hmrf.py "$c/t1.nii.gz" "$c/mask.nii.gz" "$p" "$DIPY_ITER")
      echo "dipy($DIPY_ITER it.)  $($SIM eval "$c" "$p"); $t"
      if [ -f "$c/lesion_core.nii.gz" ]; then echo "dipy($DIPY_ITER it.)  $($SIM lesion "$c" "$p")"; fi
    fi
    if command -v Atropos > /dev/null; then
      p="$WORK/atropos/$n"; mkdir -p "$p"
      t=$(timed Atropos -d 3 -a "$c/t1.nii.gz" -x "$c/mask.nii.gz" -i "KMeans[3]" -c "[5,0]" -m "[0.1,1x1x1]" \
        -o "[$p/dseg.nii.gz,$p/probseg_%d.nii.gz]")
      for k in 1 2 3; do mv -f "$p/probseg_$k.nii.gz" "$p/probseg_$(echo csf gm wm | cut -d' ' -f$k).nii.gz"; done
      echo "atropos $($SIM eval "$c" "$p"); $t"
    fi
    if command -v fast > /dev/null; then
      p="$WORK/fast/$n"; mkdir -p "$p"
      $PY -c "import nibabel as nib, numpy as np; t = nib.load('$c/t1.nii.gz'); m = np.asanyarray(nib.load('$c/mask.nii.gz').dataobj) > 0
nib.save(nib.Nifti1Image(np.where(m, np.asanyarray(t.dataobj), 0).astype(np.float32), t.affine), '$p/brain.nii.gz')"
      t=$(timed fast -t 1 -n 3 -o "$p/fast" "$p/brain.nii.gz")
      for k in 0 1 2; do cp -f "$p/fast_pve_$k.nii.gz" "$p/probseg_$(echo csf gm wm | cut -d' ' -f$((k + 1))).nii.gz"; done
      echo "fast  $($SIM eval "$c" "$p"); $t"
    fi
  fi
done

if [ "${PLAN_LESIONS:-0}" = 1 ] && [ -f "$DATA/philips-mprage/T1w.nii.gz" ]; then
  echo "== targets of the Philips head with and without a lesion painted in (plan-subject.sh --no-efield)"
  plan() {  # plan T1 OUT: the pipeline up to target-pick
    mkdir -p "$2"
    TMSPLAN_BIN=$(cd "$BIN" && pwd) "$here/scripts/plan-subject.sh" "$1" "$2" --no-efield --threads "$THREADS" \
      > "$2.log" 2>&1 || { echo "segment_sim: plan failed: $2 (see $2.log)" >&2; return 1; }
  }
  plan "$DATA/philips-mprage/T1w.nii.gz" "$WORK/plans/healthy" || exit 0
  # one head per lesion geometry (cavity-thalamic-spgr15 is cavity-thalamic on another contrast)
  for n in $($PY -c "import json
seen, names = set(), []
for l in json.load(open('$SPEC'))['lesions']:
    key = json.dumps({k: v for k, v in l.items() if k not in ('name', 'base')}, sort_keys=True)
    if key not in seen: seen.add(key); names.append(l['name'])
print(' '.join(names))"); do
    [ -f "$WORK/plans/$n-t1/t1.nii.gz" ] || $SIM real-lesion "$SPEC" "$DATA" "$n" "$WORK/plans/$n-t1" > /dev/null
    plan "$WORK/plans/$n-t1/t1.nii.gz" "$WORK/plans/$n" || continue
    "$here/scripts/bench/aniso.sh" compare "$WORK/plans/healthy/targets.json" "$WORK/plans/$n/targets.json" |
      sed "s/^/ours  $n vs healthy: /"
  done
fi
