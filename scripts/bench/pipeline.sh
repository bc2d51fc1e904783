#!/usr/bin/env bash
# Part of scripts/bench.sh (called with BIN SAMPLES DATA WORK THREADS ROWS set): the whole
# pipeline on the Philips scan (time and memory per step) and on Colin27 and its copies
# (segmentation and targets brought back through the known transforms), plus peers.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$ROWS"; }
# step_rows DIR DATA: one row per step from the records (wall seconds and peak memory they hold).
step_rows() {
  local dir=$1 data=$2 rec
  for rec in skull_strip segment cortex_map target_pick plan/protocol_export; do
    [ -f "$dir/$rec.json" ] || continue
    $PY - "$dir/$rec.json" "$data" >> "$ROWS" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = r.get("time", {})
print(f"{r['tool']}\t{sys.argv[2]}\t{t.get('wall_seconds', 0):.1f}\t-\t{t.get('peak_memory_mib', 0):.0f}\t(from the record)")
PYEOF
  done
}
TARGETS=(--target M1_hand_left --target M1_hand_right --target DLPFC_BA46 --target DLPFC_BA9)

if [ -f "$DATA/philips-mprage/T1w.nii.gz" ]; then
  d="$WORK/pipeline-philips"; rm -rf "$d"; mkdir -p "$d"
  tf=$(mktemp)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$here/scripts/plan-subject.sh" "$DATA/philips-mprage/T1w.nii.gz" "$d" \
    "${TARGETS[@]}" --threads "$THREADS" 2> "$WORK/pipeline-philips.log"
  read -r w u s kb < "$tf"; rm -f "$tf"
  step_rows "$d" philips
  row "plan-subject (5 tools)" philips "$w" "$(echo "$u + $s" | bc)" "$((kb / 1024))" "whole plan; peak = largest single step"
  seg=$($PY "$here/scripts/segment_eval.py" dice-fast "$d" "$DATA/philips-mprage/reference" | tr '\n' ' ')
  row segment philips - - - "$seg"
  m1=$($PY -c "
import json
r = json.load(open('$d/cortex_map.json'))['figures']
g = r['registration']
print(f\"brain Dice in MNI vs template {g['dice_brain_mni_vs_template_brain']}; NCC identity/affine/deformable {g['ncc_brain_identity']}/{g['ncc_brain_affine']}/{g['ncc_brain_deformable']}; M1 (-37,-21,58) lands {r['m1_hand']['distance_to_gm_mm']} mm from GM; scalp Euler {r['surfaces']['scalp']['euler']}\")")
  row cortex-map philips - - - "$m1"
  tp=$($PY -c "
import json
t = json.load(open('$d/targets.json'))['targets']
print('; '.join(f\"{x['name']} depth {x['scalp_to_cortex_mm']} mm\" + (f\", F3 {x['classical'].get('eeg_F3_to_target_scalp_mm')} mm, 5cm {x['classical'].get('rule_5cm_to_target_scalp_mm')} mm\" if x.get('classical') else '') for x in t))")
  row target-pick philips - - - "$tp"
fi

# Colin27 and its copies: the same targets, brought back through the known transforms.
c="$WORK/pipeline-colin"; mkdir -p "$c"
"$here/scripts/plan-subject.sh" /usr/share/mricron/templates/ch2.nii.gz "$c" "${TARGETS[@]}" --threads "$THREADS" 2> "$WORK/pipeline-colin.log"
for copy in ras-shift lps-rot pir-aniso oblique-bias asl-warp; do
  o="$WORK/pipeline-$copy"; mkdir -p "$o"
  "$here/scripts/plan-subject.sh" "$SAMPLES/$copy.nii.gz" "$o" "${TARGETS[@]}" --threads "$THREADS" 2> "$WORK/pipeline-$copy.log" || {
    row pipeline "copy $copy" - - - "FAILED: $(grep error "$WORK/pipeline-$copy.log" | tail -1)"; continue; }
  seg=$("$BIN/bench-eval" copy-dice "$SAMPLES/copies.json" "$copy" "$c/dseg.nii.gz" "$o/dseg.nii.gz" --labels 2 3 | awk '{printf "%s %s ", ($1==2?"GM":"WM"), $2}')
  row segment "copy $copy" - - - "Dice vs original brought back: $seg"
  tg=$("$BIN/bench-eval" copy-targets "$SAMPLES/copies.json" "$copy" "$c/targets.json" "$o/targets.json" |
    awk '{printf "%s %s/%s mm z %s deg; ", $1, $3, $5, $7}')
  row target-pick "copy $copy" - - - "cortical/scalp distance to original, coil z angle: $tg"
done
