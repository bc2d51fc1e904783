# Sourced by the benchmark scripts of scripts/bench/ (needs WORK and ROWS set).
# bench_requires PKG...: installs the Debian packages a benchmark needs (python3-nibabel,
# python3-scipy, python3-dipy, time, bc ...) when missing, through scripts/setup.sh.
bench_requires() { TMSPLAN_EXTRA_PACKAGES="$*" "$(dirname "${BASH_SOURCE[0]}")/../setup.sh" --packages-only; }
# row STEP DATA WALL CPU MIB FIGURES: one table row.
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$ROWS"; }
# timed CMD...: runs CMD under /usr/bin/time; sets T_WALL T_CPU (user+sys) T_MIB (peak RSS).
# stdout goes to $WORK/last.out, stderr to $WORK/last.err. Returns 1 (message on stderr) on failure.
timed() {
  local tf u s kb; tf=$(mktemp)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || {
    echo "bench: failed: $*" >&2; tail -20 "$WORK/last.err" >&2; rm -f "$tf"; return 1; }
  read -r T_WALL u s kb < <(tail -1 "$tf"); rm -f "$tf"
  T_CPU=$(echo "$u + $s" | bc); T_MIB=$((kb / 1024))
}
# ratio OURS_WALL PEER_WALL: "peer wall / our wall" as x<factor> (> 1: ours faster).
ratio() { awk -v o="$1" -v p="$2" 'BEGIN { if (o > 0) { r = p / o; printf (r < 1 ? "x%.2f" : r < 10 ? "x%.1f" : "x%.0f"), r } else print "-" }'; }
# The Colin27 copies the pipeline benchmarks plan (data/samples/copies.json; pir-warp5-scalp and the
# 2 mm samples are scored apart).
COLIN_COPIES=(ras-shift lps-rot pir-aniso oblique-bias asl-warp pir-warp5)
# copy_target_cells FILE: bench-eval copy-targets lines as "NAME cortical/scalp mm z coil deg; ...".
copy_target_cells() { awk '{printf "%s %s/%s mm z %s deg; ", $1, $3, $5, $7}' "$1"; }
# copy_target_summary FILE: mean and max cortical distance and max coil z over bench-eval
# copy-targets lines (issue 16's goal: 0.5 / 1.0 mm mean / max, coil z 1.5 deg).
copy_target_summary() {
  awk '{n++; s+=$3; m=($3>m?$3:m); z=($7>z?$7:z)} END {printf "%d targets: cortical mean %.2f max %.2f mm, coil z max %.2f deg", n, s/n, m, z}' "$1"
}
# copy_target_by_name FILE: per target, the mean cortical distance and the mean mapped-point
# distance ("prior", the registration's part) over bench-eval copy-targets lines.
copy_target_by_name() {
  awk '{n[$1]++; c[$1]+=$3; p[$1]+=$11} END {for (k in n) printf "%s %.2f (prior %.2f)\n", k, c[k]/n[k], p[k]/n[k]}' "$1" |
    LC_ALL=C sort | paste -sd ';' | sed 's/;/; /g'
}
# nearest_pick DIR: the folder's targets (the caller's TARGETS, with its BIN and THREADS) again with
# target-pick --snap nearest (the nearest grey matter instead of the nearest crown), into
# DIR/nearest/targets.json.
nearest_pick() {
  mkdir -p "$1/nearest"
  "$BIN/target-pick" -s "$1" "${TARGETS[@]}" --snap nearest -o "$1/nearest/targets.json" --threads "$THREADS" \
    --force --quiet > /dev/null
}
