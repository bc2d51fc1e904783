#!/usr/bin/env bash
# side_by_side.sh [REV [ROUNDS]]: the Philips plan (four targets, --threads 2) with an older revision's
# build and with this tree's build, alternated in one run, so that both see the same machine (issue 16's
# "measured side by side"). REV (default 92a8e6a, the tree the issue measured: five steps, 45 s) is
# checked out with `git worktree` under out/bench/rev-REV and built there (scripts/setup.sh, ccache);
# each side runs its own scripts/plan-subject.sh. Prints per round the whole plan's wall time and each
# step's wall time and peak memory from its record. Timing only: nothing here is pass/fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
REV=${1:-92a8e6a}; ROUNDS=${2:-2}
DATA=${TMSPLAN_SHARED_DATA:-$here/../shared/data}
T1=$DATA/philips-mprage/T1w.nii.gz
[ -f "$T1" ] || { echo "side_by_side: $T1 absent: nothing to time" >&2; exit 0; }
WORK=${BENCH_DIR:-$here/out/bench}/side-by-side; mkdir -p "$WORK"
OLD=$here/out/bench/rev-$REV
[ -d "$OLD" ] || git worktree add --detach "$OLD" "$REV" >&2
(cd "$OLD" && CCACHE_BASEDIR="$OLD" scripts/setup.sh >&2)
scripts/setup.sh >&2
TG=(--target M1_hand_left --target M1_hand_right --target DLPFC_BA46 --target DLPFC_BA9 --threads 2)
steps() {
  /usr/bin/python3 - "$1" <<'PY'
import json, os, sys
rows = []
for f in ["skull_strip", "segment", "cortex_map", "target_pick", "efield"]:
    p = os.path.join(sys.argv[1], f + ".json")
    if os.path.exists(p):
        t = json.load(open(p)).get("time", {})
        rows.append(f"{f} {t['wall_seconds']:.1f} s / {t['peak_memory_mib']:.0f} MiB")
print("; ".join(rows))
PY
}
for r in $(seq 1 "$ROUNDS"); do
  for side in "$REV" this; do
    root=$OLD; [ "$side" = this ] && root=$here
    o=$WORK/$side-$r; rm -rf "$o"; mkdir -p "$o"
    s=$(date +%s.%N)
    TMSPLAN_BIN=$root/build/bin "$root/scripts/plan-subject.sh" "$T1" "$o" "${TG[@]}" > "$o.log" 2>&1
    e=$(date +%s.%N)
    printf '%-8s round %d: whole plan %.1f s wall (load %s); %s\n' "$side" "$r" "$(echo "$e - $s" | bc)" \
      "$(cut -d' ' -f1 /proc/loadavg)" "$(steps "$o")"
  done
done
