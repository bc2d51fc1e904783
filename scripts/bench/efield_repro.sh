#!/usr/bin/env bash
# scripts/bench/efield_repro.sh: is efield's answer the same on copies of one head? Runs the efield
# step (BEM, --rmt 50 at M1_hand_left) with several settings on Colin27 and its scanner-like copies
# (the $WORK/pipeline-colin and pipeline-<copy> folders of scripts/bench/pipeline.sh; run it first)
# and adds one row per setting and target: the spread of the field-chosen handle angle over the
# heads (modulo 180 degrees) and the range of the E-field dose in % RMT by each ROI statistic.
# Standalone: WORK=out/bench ROWS=out/bench/repro.tsv BIN=build/bin scripts/bench/efield_repro.sh; cat out/bench/repro.tsv
# Nothing here is pass/fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/scripts/bench/common.sh"
PY=/usr/bin/python3
THREADS=${THREADS:-2}
heads=()
for d in "$WORK"/pipeline-colin "${COLIN_COPIES[@]/#/$WORK/pipeline-}"; do
  [ -f "$d/targets.json" ] && heads+=("$d")
done
[ ${#heads[@]} -ge 2 ] || { echo "efield_repro: fewer than 2 Colin27 plans under $WORK (run pipeline.sh)" >&2; exit 0; }
out="$WORK/efield-repro"; mkdir -p "$out"
settings=("defaults|" "raw normals|--normal-smoothing 0" "magnitude objective|--objective magnitude")
for s in "${settings[@]}"; do
  label=${s%%|*}; read -r -a opts <<< "${s#*|}"
  : > "$out/runs.txt"
  for d in "${heads[@]}"; do
    "$BIN/efield" -s "$d" --model bem --rmt 50 --threads "$THREADS" --force --quiet "${opts[@]}" \
      --targets "$d/targets.json" > /dev/null 2>> "$out/efield.err" || { echo "efield_repro: $d failed" >&2; continue; }
    cp "$d/targets_efield.json" "$out/runs.txt.$(basename "$d").json"
    echo "$out/runs.txt.$(basename "$d").json" >> "$out/runs.txt"
  done
  $PY - "$out/runs.txt" "$label" <<'PY' | while IFS=$'\t' read -r data figures; do row "efield repro" "$data" - - - "$figures"; done
import json, sys, collections
files = [l.strip() for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(list)
for f in files:
    for t in json.load(open(f))["targets"]:
        by[t["name"]].append(t["efield"])
def spread(angles, period=180.0):  # the shortest arc holding every angle
    a = sorted(x % period for x in angles)
    return period - max((a[(i + 1) % len(a)] - a[i]) % period for i in range(len(a))) if len(a) > 1 else 0.0
for name, es in by.items():
    ang = [e["optimised"]["handle_angle_deg"] for e in es]
    s = f"{sys.argv[2]}: {len(es)} heads, handle angle spread {spread(ang):.0f} deg ({', '.join(f'{a:.0f}' for a in ang)})"
    doses = [e["dose"].get("pct_rmt_by_objective", {}) for e in es if "dose" in e]
    for key, what in (("roi_mean_magnitude", "|E|"), ("roi_mean_abs_normal", "|E.n|")):
        v = [d[key] for d in doses if key in d]
        if v: s += f"; dose by {what} {min(v):.0f}-{max(v):.0f} % RMT"
    print(f"Colin27 copies {name}\t{s}")
PY
done
