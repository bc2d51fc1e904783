#!/usr/bin/env bash
# Part of scripts/bench/bench.sh (called with BIN DATA WORK THREADS ROWS set; runs alone as well):
# the Philips scan varied as real scans vary (defaced, field of view cut above or through the brain,
# rotated in the world, intensities scaled or offset, skull-stripped, MP2RAGE-like bright noise;
# scripts/bench/robustness.py), each planned with plan-subject.sh --no-efield. One row per case:
# for the cases that must plan, the largest cortical and coil-centre distance and coil z angle to
# the healthy plan's targets carried by the known transform; for the cases that must be refused,
# the error line. A case that plans when it must be refused, or the reverse, says "UNEXPECTED".
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
: "${BIN:=$here/build/bin}" "${DATA:=$here/../shared/data}" "${WORK:=/tmp/tmsplan-robustness}" "${THREADS:=2}"
: "${ROWS:=$WORK/rows.tsv}"
mkdir -p "$WORK"
. "$here/scripts/bench/common.sh"  # row, nearest_pick
bench_requires python3-nibabel python3-scipy time bc
T1=$DATA/philips-mprage/T1w.nii.gz
[ -f "$T1" ] || { echo "robustness.sh: skipped: $T1 not found" >&2; exit 0; }
TARGETS=(--target M1_hand_left --target M1_hand_right --target DLPFC_BA46 --target DLPFC_BA9)
# plan T1 OUTDIR [TARGET OPTIONS]: the four targets unless others are given.
plan() {
  local t1=$1 out=$2; shift 2
  [ $# -gt 0 ] || set -- "${TARGETS[@]}"
  TMSPLAN_BIN=$BIN "$here/scripts/plan-subject.sh" "$t1" "$out" "$@" --threads "$THREADS" --no-efield
}
# summary CASE.json PLAN: the largest differences to the healthy plan over the plan's targets.
summary() {
  $PY "$here/scripts/bench/robustness.py" compare "$healthy/targets.json" "$1" "$2/targets.json" |
    awk '{c=($2>c?$2:c); k=($3>k?$3:k); z=($4>z?$4:z); n++} END {printf "%d targets: cortical max %.2f mm, coil centre max %.2f mm, coil z max %.2f deg", n, c, k, z}'
}

healthy=$WORK/robust-healthy
plan "$T1" "$healthy" > /dev/null 2> "$WORK/robust-healthy.log"
nearest_pick "$healthy"
cases=$WORK/robust-cases
mkdir -p "$cases"
$PY "$here/scripts/bench/robustness.py" make "$T1" "$healthy" "$cases"
for json in "$cases"/*.json; do
  name=$(basename "$json" .json)
  expect=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['expect'])" "$json")
  out=$WORK/robust-$name
  rm -rf "$out"
  start=$(date +%s.%N)
  if plan "$cases/$name.nii.gz" "$out" > /dev/null 2> "$WORK/robust-$name.log"; then ok=1; else ok=0; fi
  wall=$(echo "$(date +%s.%N) - $start" | bc | xargs printf '%.1f')
  err=$(grep -m1 ': error: ' "$WORK/robust-$name.log" || true)
  if [ "$ok" = 1 ]; then
    figures=$(summary "$json" "$out")
    # The same folder with the nearest grey matter instead of the nearest crown (both against the
    # intact plan picked the same way).
    if nearest_pick "$out"; then
      figures="$figures; --snap nearest: $($PY "$here/scripts/bench/robustness.py" compare "$healthy/nearest/targets.json" "$json" "$out/nearest/targets.json" |
        awk '{c=($2>c?$2:c)} END {printf "cortical max %.2f mm", c}')"
    fi
    [ "$expect" = plan ] || figures="UNEXPECTED: planned; $figures"
  else
    figures="refused: ${err#*error: }"
    case $expect in refuse*) ;; *) figures="UNEXPECTED: $figures" ;; esac
  fi
  row robustness "philips $name" "$wall" - - "$figures"
  echo "robustness $name: $figures"
  if [ "$expect" = "refuse M1" ]; then
    # DLPFC_BA46, 15 mm below the cut (BA9's entry lies on it), must still be planned, with the
    # cut warning.
    if plan "$cases/$name.nii.gz" "$out-dlpfc" --target DLPFC_BA46 > /dev/null 2> "$WORK/robust-$name-dlpfc.log"; then
      warned=$($PY -c "import json,sys; t=json.load(open(sys.argv[1]))['targets']; print(sum(any('cuts through the brain' in w for w in x['warnings']) for x in t), 'of', len(t))" "$out-dlpfc/targets.json")
      figures="$(summary "$json" "$out-dlpfc"); cut warning on $warned"
    else
      figures="UNEXPECTED: refused: $(grep -m1 ': error: ' "$WORK/robust-$name-dlpfc.log" || true)"
    fi
    row robustness "philips $name, DLPFC_BA46 only" - - - "$figures"
    echo "robustness $name, DLPFC_BA46 only: $figures"
  fi
done
