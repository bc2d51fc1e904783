#!/usr/bin/env bash
# efield rows for scripts/bench/bench.sh (needs BIN WORK ROWS THREADS; run after pipeline.sh, whose
# subject folders it reuses): per subject, the efield step with each model (time, memory), the
# M1 optimum handle angle against the 45-degree rule, |E| and |E.n| at each target under both
# models, the E-field dose of each target next to Stokes' (nominal RMT 50 %MSO: the ratio is what
# matters), and the probe's speed at 10,000 points. Nothing here is pass/fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/scripts/bench/common.sh"
bench_requires python3 time bc
PY=/usr/bin/python3
summary() {  # summary FILE: one line of figures per target
  $PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
out = []
for t in d["targets"]:
    e = t["efield"]; o = e["optimised"]; r = e["rule"]
    s = (f"{t['name']}: handle {o['handle_angle_deg']:.0f} (rule {r['handle_angle_deg']:.0f}, moved {o['centre_shift_mm']:.1f} mm)"
         f" |E| {o['field']['target_magnitude']:.3f}/{o['field_other_model']['target_magnitude']:.3f}"
         f" |E.n|roi {o['field']['roi_mean_abs_normal']:.3f}/{o['field_other_model']['roi_mean_abs_normal']:.3f}"
         f" (rule {r['field']['roi_mean_abs_normal']:.3f})")
    if "dose" in e:
        b = e['dose'].get('pct_rmt_by_objective', {})
        s += (f" dose {e['dose']['efield_pct_mso']:.1f}% ({e['dose']['efield_pct_rmt']:.0f}% RMT;"
              f" by |E| {b.get('roi_mean_magnitude', float('nan')):.0f}%, by |E.n| {b.get('roi_mean_abs_normal', float('nan')):.0f}%)"
              f" Stokes {e['dose']['stokes_pct_mso']:.1f}%")
    out.append(s)
print("; ".join(out))
PY
}
for subj in "$WORK"/pipeline-*; do
  [ -f "$subj/targets.json" ] || continue
  name=${subj##*/pipeline-}
  for model in sphere bem; do
    if timed "$BIN/efield" -s "$subj" --model "$model" --rmt 50 --threads "$THREADS" --force --verbose; then
      row "efield $model" "$name" "$T_WALL" "$T_CPU" "$T_MIB" "$(summary "$subj/targets_efield.json") [model/other model, V/m per A/us]"
    else
      row "efield $model" "$name" - - - "FAILED: $(grep error "$WORK/last.err" | tail -1)"
    fi
  done
done
# The probe: 10,000 points in a ball under a coil over the top of an 85 mm sphere.
p="$WORK/efield-probe"; mkdir -p "$p"
$PY - "$p" <<'PY'
import random, sys, math
d = sys.argv[1]; random.seed(1)
with open(d + "/points.txt", "w") as f:
    n = 0
    while n < 10000:
        x, y, z = (random.uniform(-1, 1) for _ in range(3))
        if x*x + y*y + z*z <= 1:
            f.write(f"{30*x:.3f},{30*y:.3f},{50 + 30*z:.3f}\n"); n += 1
with open(d + "/pose.txt", "w") as f:
    f.write("-1 0 0 0\n0 1 0 0\n0 0 -1 89\n0 0 0 1\n")
PY
"$BIN/efield" probe --pose "$p/pose.txt" --points "$p/points.txt" --model sphere --sphere-centre 0,0,0 > /dev/null 2>&1 || true
for model in primary sphere; do
  extra=(); [ "$model" = sphere ] && extra=(--sphere-centre 0,0,0)
  timed "$BIN/efield" probe --pose "$p/pose.txt" --points "$p/points.txt" --model "$model" "${extra[@]}" --threads "$THREADS" --verbose
  row "efield probe $model" "10k points" "$T_WALL" "$T_CPU" "$T_MIB" "$(grep -o 'field at .*' "$WORK/last.err" | tail -1) (wall includes start-up, coil and point reading)"
done
