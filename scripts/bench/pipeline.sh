#!/usr/bin/env bash
# Part of scripts/bench/bench.sh (called with BIN SAMPLES DATA WORK THREADS ROWS set): the whole
# pipeline on the Philips scan and on its 0.4 x 0.4 x 1.5 mm axial copy (wall, CPU and peak memory
# per step; the copy's targets against the 1 mm plan's), and on Colin27 and its copies
# (segmentation and targets brought back through the known transforms), plus peers.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
TPL=/usr/share/mricron/templates
. "$here/scripts/bench/common.sh"  # row, timed, ratio, COLIN_COPIES, copy_target_cells/summary, nearest_pick
bench_requires python3-dipy python3-nibabel python3-scipy time bc  # the evaluators and the dipy peers
TARGETS=(--target M1_hand_left --target M1_hand_right --target DLPFC_BA46 --target DLPFC_BA9)
# plan_subject T1 OUTDIR [options]: plan-subject.sh with this bench's tools (BIN), not the tree's build.
plan_subject() { TMSPLAN_BIN=$BIN "$here/scripts/plan-subject.sh" "$@"; }

# plan_rows DIR DATA: one row per step from DIR/steps.tsv (scripts/bench/aniso.sh plan: wall, CPU,
# peak MiB under /usr/bin/time) and the five steps' total.
plan_rows() {
  local tool w c m
  while IFS=$'\t' read -r tool w c m; do
    [ "$tool" = total ] && continue
    row "$tool (in plan)" "$2" "$w" "$c" "$m" "plan-subject.sh, --threads $THREADS"
  done < "$1/steps.tsv"
  read -r _ w c m < <(grep '^total' "$1/steps.tsv")
  row "plan (5 tools)" "$2" "$w" "$c" "$m" "sum of the steps; peak = largest single step; load $(cut -d' ' -f1-3 /proc/loadavg)"
}
# efield_row DIR DATA: the same folder planned again with efield (BEM): the efield step's row.
efield_row() {
  local five_w=$(awk '$1 == "total" {print $2}' "$1/steps.tsv")
  cp "$1/steps.tsv" "$1/steps-5.tsv"
  TMSPLAN_BIN=$BIN "$here/scripts/bench/aniso.sh" plan "$3" "$1" "${TARGETS[@]}" --threads "$THREADS" > /dev/null 2>> "$WORK/pipeline-$2.log"
  read -r _ w c m < <(grep '^efield' "$1/steps.tsv")
  row "efield (in plan)" "$2" "$w" "$c" "$m" "BEM; whole plan with efield $(echo "$five_w + $w" | bc) s wall"
  mv "$1/steps-5.tsv" "$1/steps.tsv"
}

# Independent checks of a folder's targets: cortical point in GM (dseg's voxel; segment's fraction
# at the point, which the snap weighs), scalp point on the head-mask boundary (voxels), coil z
# against a plane fitted to the boundary within 10 mm (degrees). Defined before its first use.
target_checks() {
  "$BIN/bench-eval" target-checks "$1" "$1/targets.json" |
    awk '{n++; g+=$3; f+=($11>=0.5); b=($5>b?$5:b); a=($7>a?$7:a)} END {printf "%d/%d cortical points in dseg GM, %d/%d at GM fraction >= 0.5; scalp point to head boundary max %.2f voxel; coil z vs local scalp plane max %.2f deg", g, n, f, n, b, a}'
}

# Colin27 planned first: its dseg is the template's labels for the Philips registration rows, and
# its targets are the answer its copies are scored against (below).
mkdir -p "$WORK/pipeline-colin"
plan_subject /usr/share/mricron/templates/ch2.nii.gz "$WORK/pipeline-colin" "${TARGETS[@]}" --threads "$THREADS" \
  2> "$WORK/pipeline-colin.log" || row pipeline colin27 - - - "FAILED: $(grep error "$WORK/pipeline-colin.log" | tail -1)"

if [ -f "$DATA/philips-mprage/T1w.nii.gz" ]; then
  d="$WORK/pipeline-philips"; rm -rf "$d"; mkdir -p "$d"
  TMSPLAN_BIN=$BIN "$here/scripts/bench/aniso.sh" plan "$DATA/philips-mprage/T1w.nii.gz" "$d" \
    "${TARGETS[@]}" --threads "$THREADS" --no-efield > /dev/null 2> "$WORK/pipeline-philips.log"
  plan_rows "$d" philips
  efield_row "$d" philips "$DATA/philips-mprage/T1w.nii.gz"

  # The same head as a clinical sub-millimetre anisotropic scan (0.4 x 0.4 x 1.5 mm axial, 512 x
  # 512 x 120; scripts/bench/aniso.sh make): planned on the working grid, targets against the 1 mm plan.
  an="$WORK/philips-aniso.nii.gz"
  [ -f "$an" ] || "$here/scripts/bench/aniso.sh" make "$DATA/philips-mprage/T1w.nii.gz" "$an" > /dev/null
  da="$WORK/pipeline-philips-aniso"; rm -rf "$da"; mkdir -p "$da"
  if TMSPLAN_BIN=$BIN "$here/scripts/bench/aniso.sh" plan "$an" "$da" "${TARGETS[@]}" --threads "$THREADS" --no-efield \
       > /dev/null 2> "$WORK/pipeline-philips-aniso.log"; then
    plan_rows "$da" philips-aniso-0.4x0.4x1.5
    agree=$("$here/scripts/bench/aniso.sh" compare "$d/targets.json" "$da/targets.json" |
      awk '{printf "%s %s/%s mm z %s deg; ", $1, $3, $5, $7; c = ($3 > c ? $3 : c); s = ($5 > s ? $5 : s); z = ($7 > z ? $7 : z)}
           END {printf "max cortical %.2f mm, scalp %.2f mm, coil z %.2f deg (goal 1 mm, 2 deg)", c, s, z}')
    row target-pick "philips-aniso vs 1 mm" - - - "cortical/scalp distance, coil z angle: $agree"
  else row "plan (5 tools)" philips-aniso-0.4x0.4x1.5 - - - "FAILED: $(grep error "$WORK/pipeline-philips-aniso.log" | tail -1)"; fi

  # segment: ours, run again on the pipeline's skull-strip output under the same timer as the
  # peers; every peer reads that same input (t1w_biascorr masked by brain_mask) and is scored by
  # segment_eval.py dice-fast (probseg > 0.5 and dseg labels against FAST), as ours is.
  REF="$DATA/philips-mprage/reference"
  brain="$WORK/philips_brain.nii.gz"  # t1w_biascorr x brain_mask, for the tools that take a brain image
  $PY "$here/scripts/bench/coord_images.py" mask "$d/t1w_biascorr.nii.gz" "$d/brain_mask.nii.gz" "$brain"
  sg="$WORK/segment-philips"; rm -rf "$sg"; mkdir -p "$sg"
  timed "$BIN/segment" --t1 "$d/t1w_biascorr.nii.gz" --mask "$d/brain_mask.nii.gz" -o "$sg" --threads "$THREADS" --force
  seg_wall=$T_WALL
  row segment philips "$T_WALL" "$T_CPU" "$T_MIB" "$($PY "$here/scripts/bench/segment_eval.py" dice-fast "$sg" "$REF")"
  p="$WORK/peer-hmrf"; rm -rf "$p"
  if timed $PY "$here/scripts/bench/peer_hmrf.py" "$d/t1w_biascorr.nii.gz" "$d/brain_mask.nii.gz" "$p" 20 0.1; then
    row "peer: dipy HMRF" philips "$T_WALL" "$T_CPU" "$T_MIB" \
      "$($PY "$here/scripts/bench/segment_eval.py" dice-fast "$p" "$REF"); 3 classes, beta 0.1, max_iter 20; wall peer/ours $(ratio "$seg_wall" "$T_WALL")"
  else row "peer: dipy HMRF" philips - - - "FAILED (see $WORK/last.err)"; fi
  if command -v fast >/dev/null; then
    p="$WORK/peer-fast"; rm -rf "$p"; mkdir -p "$p"
    if timed fast -t 1 -n 3 -o "$p/fast" "$brain"; then
      ln -s fast_seg.nii.gz "$p/dseg.nii.gz"; ln -s fast_pve_0.nii.gz "$p/probseg_csf.nii.gz"
      ln -s fast_pve_1.nii.gz "$p/probseg_gm.nii.gz"; ln -s fast_pve_2.nii.gz "$p/probseg_wm.nii.gz"
      row "peer: FSL fast" philips "$T_WALL" "$T_CPU" "$T_MIB" \
        "$($PY "$here/scripts/bench/segment_eval.py" dice-fast "$p" "$REF"); the reference is FAST itself (other input); wall peer/ours $(ratio "$seg_wall" "$T_WALL")"
    else row "peer: FSL fast" philips - - - "FAILED (see $WORK/last.err)"; fi
  fi
  if command -v Atropos >/dev/null; then
    p="$WORK/peer-atropos"; rm -rf "$p"; mkdir -p "$p"
    if timed Atropos -d 3 -a "$brain" -x "$d/brain_mask.nii.gz" -i "KMeans[3]" -c "[5,0]" -m "[0.1,1x1x1]" \
         -o "[$p/dseg.nii.gz,$p/post%d.nii.gz]"; then
      ln -s post1.nii.gz "$p/probseg_csf.nii.gz"; ln -s post2.nii.gz "$p/probseg_gm.nii.gz"; ln -s post3.nii.gz "$p/probseg_wm.nii.gz"
      row "peer: ANTs Atropos" philips "$T_WALL" "$T_CPU" "$T_MIB" \
        "$($PY "$here/scripts/bench/segment_eval.py" dice-fast "$p" "$REF"); k-means init, MRF 0.1, 5 it.; wall peer/ours $(ratio "$seg_wall" "$T_WALL")"
    else row "peer: ANTs Atropos" philips - - - "FAILED (see $WORK/last.err)"; fi
  fi

  # cortex-map: ours, run again under the timer on the pipeline's inputs; ours and the peers get the
  # same figures from scripts/bench/reg_eval.py (brain Dice in MNI vs ch2bet, NCC over the template
  # brain at 2 mm, where MNI (-37,-21,58) lands relative to our GM), from their transforms.
  c="$WORK/cortexmap-philips"; rm -rf "$c"; mkdir -p "$c"
  timed "$BIN/cortex-map" --t1 "$d/t1w_biascorr.nii.gz" --brain "$d/brain_mask.nii.gz" --head "$d/head_mask.nii.gz" \
    --dseg "$d/dseg.nii.gz" -o "$c" --threads "$THREADS" --force
  cm_wall=$T_WALL
  # Like for like: the subject's mask in MNI also against our own skull-strip of Colin27 (bench.sh's
  # skull-strip rows make it), whose edge follows the same definition (reg_eval.py dice_own).
  own=(); [ -f "$WORK/colin/brain_mask.nii.gz" ] && own=(--own-template-mask "$WORK/colin/brain_mask.nii.gz")
  # And the HD-BET reference of the scan carried by the same map against ch2bet: two masks of one
  # (BET-like) definition, neither of them ours (reg_eval.py dice_ref).
  [ -f "$REF/brainmask_hdbet.nii.gz" ] && own+=(--subject-mask "$REF/brainmask_hdbet.nii.gz")
  # And the anatomy without any mask: the subject's segment labels carried into MNI against our
  # segment of Colin27 (WM, GM, GM+WM Dice; reg_eval.py dice_wm/dice_gm/dice_tissue), from the
  # Colin27 plan above.
  [ -f "$WORK/pipeline-colin/dseg.nii.gz" ] && own+=(--template-dseg "$WORK/pipeline-colin/dseg.nii.gz")
  reg_fig() {  # reg_eval output -> table text
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           printf "brain Dice in MNI vs ch2bet %s (affine only %s)%s; NCC affine/deformable %s/%s; M1 (-37,-21,58) lands %s mm from GM",
                  v["dice"], v["dice_affine"], ("dice_own" in v ? sprintf(", vs our Colin27 mask %s (that mask vs ch2bet %s)", v["dice_own"], v["own_vs_ch2bet"]) : "") ("dice_ref" in v ? sprintf(", HD-BET mask carried vs ch2bet %s", v["dice_ref"]) : "") ("dice_wm" in v ? sprintf("; segment labels carried vs our Colin27 segment: Dice WM %s, GM %s, GM+WM %s", v["dice_wm"], v["dice_gm"], v["dice_tissue"]) : ""), v["ncc_affine"], v["ncc"], v["m1_gm_mm"] }'
  }
  fig=$($PY "$here/scripts/bench/reg_eval.py" "$d" "${own[@]}" --cortex-map "$c" | reg_fig)
  extra=$($PY -c "
import json
r = json.load(open('$c/cortex_map.json'))['figures']
s = r['seconds']
print(f\"; scalp Euler {r['surfaces']['scalp']['euler']}; registration stages {s['affine'] + s['deformable'] + s['inverse']:.1f} s of the wall (rest: atlases, surfaces, maps, I/O)\")")
  reg_s=$($PY -c "import json; s = json.load(open('$c/cortex_map.json'))['figures']['seconds']; print(s['affine'] + s['deformable'] + s['inverse'])")
  row cortex-map philips "$T_WALL" "$T_CPU" "$T_MIB" "$fig$extra"
  p="$WORK/peer-dipy-syn"; rm -rf "$p"
  if timed env OMP_NUM_THREADS="$THREADS" $PY "$here/scripts/bench/peer_syn.py" "$d/t1w_biascorr.nii.gz" "$d/brain_mask.nii.gz" "$p" \
       --affine-iters 1000,100,10 --affine-sampling 0.25 --syn-iters 10,10,5; then
    stages=$(sed -n 's/^seconds \(.*\);.*/\1/p' "$WORK/last.out")
    row "peer: dipy affine+SyN" philips "$T_WALL" "$T_CPU" "$T_MIB" \
      "$($PY "$here/scripts/bench/reg_eval.py" "$d" "${own[@]}" --map "$p/mni_to_subject.nii" --affine-map "$p/mni_to_subject_affine.nii" | reg_fig); MI affine 1000/100/10 it. 25 % sampled, SyN CC r3 10/10/5 it. (s: $stages); wall peer/ours $(ratio "$cm_wall" "$T_WALL") (vs our registration stages $(ratio "$reg_s" "$T_WALL"))"
  else row "peer: dipy affine+SyN" philips - - - "FAILED (see $WORK/last.err)"; fi
  if command -v antsRegistration >/dev/null && command -v antsApplyTransforms >/dev/null; then
    p="$WORK/peer-ants-syn"; rm -rf "$p"; mkdir -p "$p"
    f="$TPL/ch2bet.nii.gz"
    if timed antsRegistration -d 3 --float 1 -o "[$p/ants_,$p/warped.nii.gz]" -n Linear -r "[$f,$brain,1]" \
         -t "Rigid[0.1]" -m "MI[$f,$brain,1,32,Regular,0.25]" -c "[1000x500x250x0,1e-6,10]" -f 8x4x2x1 -s 3x2x1x0vox \
         -t "Affine[0.1]" -m "MI[$f,$brain,1,32,Regular,0.25]" -c "[1000x500x250x0,1e-6,10]" -f 8x4x2x1 -s 3x2x1x0vox \
         -t "SyN[0.1,3,0]" -m "CC[$f,$brain,1,4]" -c "[100x70x50x20,1e-6,10]" -f 8x4x2x1 -s 3x2x1x0vox; then
      ants_wall=$T_WALL ants_cpu=$T_CPU ants_mib=$T_MIB
      # Where each template voxel lands in the subject: the subject's coordinate images warped like the image.
      $PY "$here/scripts/bench/coord_images.py" split "$brain" "$p/coord_"
      for a in x y z one; do
        antsApplyTransforms -d 3 -i "$p/coord_$a.nii.gz" -r "$f" -n Linear -t "$p/ants_1Warp.nii.gz" -t "$p/ants_0GenericAffine.mat" -o "$p/map_$a.nii.gz"
        antsApplyTransforms -d 3 -i "$p/coord_$a.nii.gz" -r "$f" -n Linear -t "$p/ants_0GenericAffine.mat" -o "$p/aff_$a.nii.gz"
      done
      $PY "$here/scripts/bench/coord_images.py" stack "$p"/map_{x,y,z}.nii.gz "$p/mni_to_subject.nii" "$p/map_one.nii.gz"
      $PY "$here/scripts/bench/coord_images.py" stack "$p"/aff_{x,y,z}.nii.gz "$p/mni_to_subject_affine.nii" "$p/aff_one.nii.gz"
      row "peer: ANTs antsRegistration" philips "$ants_wall" "$ants_cpu" "$ants_mib" \
        "$($PY "$here/scripts/bench/reg_eval.py" "$d" "${own[@]}" --map "$p/mni_to_subject.nii" --affine-map "$p/mni_to_subject_affine.nii" | reg_fig); rigid+affine MI, SyN CC r4 100x70x50x20; wall peer/ours $(ratio "$cm_wall" "$ants_wall")"
    else row "peer: ANTs antsRegistration" philips - - - "FAILED (see $WORK/last.err)"; fi
  fi

  tp=$($PY -c "
import json
t = json.load(open('$d/targets.json'))['targets']
print('; '.join(f\"{x['name']} depth {x['scalp_to_cortex_mm']} mm\" + (f\", F3 {x['classical'].get('eeg_F3_to_target_scalp_mm')} mm, 5cm {x['classical'].get('rule_5cm_to_target_scalp_mm')} mm\" if x.get('classical') else '') for x in t))")
  row target-pick philips - - - "$tp"
  row target-pick "philips checks" - - - "$(target_checks "$d")"
fi

# Colin27 and its copies: the same targets, brought back through the known transforms.
c="$WORK/pipeline-colin"; rm -f "$WORK/colin-copy-targets.txt" "$WORK/colin-copy-targets-nearest.txt"
[ -f "$c/targets.json" ] && nearest_pick "$c"
for copy in "${COLIN_COPIES[@]}"; do
  o="$WORK/pipeline-$copy"; mkdir -p "$o"
  plan_subject "$SAMPLES/$copy.nii.gz" "$o" "${TARGETS[@]}" --threads "$THREADS" 2> "$WORK/pipeline-$copy.log" || {
    row pipeline "copy $copy" - - - "FAILED: $(grep error "$WORK/pipeline-$copy.log" | tail -1)"; continue; }
  seg=$("$BIN/bench-eval" copy-dice "$SAMPLES/copies.json" "$copy" "$c/dseg.nii.gz" "$o/dseg.nii.gz" --labels 2 3 | awk '{printf "%s %s ", ($1==2?"GM":"WM"), $2}')
  row segment "copy $copy" - - - "Dice vs original brought back: $seg"
  "$BIN/bench-eval" copy-targets "$SAMPLES/copies.json" "$copy" "$c/targets.json" "$o/targets.json" > "$o/copy-targets.txt"
  row target-pick "copy $copy" - - - "cortical/scalp distance to original, coil z angle: $(copy_target_cells "$o/copy-targets.txt")"
  cat "$o/copy-targets.txt" >> "$WORK/colin-copy-targets.txt"
  nearest_pick "$o" && "$BIN/bench-eval" copy-targets "$SAMPLES/copies.json" "$copy" "$c/nearest/targets.json" \
    "$o/nearest/targets.json" >> "$WORK/colin-copy-targets-nearest.txt"
  row target-pick "copy $copy checks" - - - "$(target_checks "$o")"
done

[ -s "$WORK/colin-copy-targets.txt" ] && row target-pick "Colin27 copies, all" - - - "$(copy_target_summary "$WORK/colin-copy-targets.txt") (goal 0.5 / 1.0 mm, 1.5 deg); per target: $(copy_target_by_name "$WORK/colin-copy-targets.txt")"
[ -s "$WORK/colin-copy-targets-nearest.txt" ] && row target-pick "Colin27 copies, all, --snap nearest" - - - "$(copy_target_summary "$WORK/colin-copy-targets-nearest.txt"); per target: $(copy_target_by_name "$WORK/colin-copy-targets-nearest.txt")"

# pir-warp5-scalp: pir-warp5 with the tissue beyond the brain 1.3 times thicker (a head whose scalp
# and CSF are not the template's); its targets' scalp points differ by design, so only its
# registration is scored below.
if [ -f "$SAMPLES/pir-warp5-scalp.nii.gz" ]; then
  o="$WORK/pipeline-pir-warp5-scalp"; mkdir -p "$o"
  plan_subject "$SAMPLES/pir-warp5-scalp.nii.gz" "$o" "${TARGETS[@]}" --threads "$THREADS" --no-efield \
    2> "$WORK/pipeline-pir-warp5-scalp.log" > /dev/null || row pipeline "copy pir-warp5-scalp" - - - "FAILED: $(grep error "$WORK/pipeline-pir-warp5-scalp.log" | tail -1)"
fi

# Known-answer registration on the copies with a smooth warp: ours (the pipeline's cortex-map, its
# time from the record) and dipy affine+SyN (scripts/bench/peer_syn.py, the same skull-strip output
# as input), scored at the same 200 cortical points by scripts/bench/copy_reg_eval.py.
for copy in asl-warp pir-warp5 pir-warp5-scalp; do
  o="$WORK/pipeline-$copy"
  [ -f "$o/to_mni_warp.nii.gz" ] || continue
  ka=$($PY "$here/scripts/bench/copy_reg_eval.py" "$SAMPLES/copies.json" "$copy" --cortex-map "$o")
  cm=$($PY -c "import json; r = json.load(open('$o/cortex_map.json')); print(r['time']['wall_seconds'], r['figures']['registration']['min_jacobian'])")
  row cortex-map "copy $copy" "${cm% *}" - - "known answer (mm, 200 cortical points): $ka; min Jacobian ${cm#* }"
  p="$WORK/peer-dipy-syn-$copy"; rm -rf "$p"
  if timed env OMP_NUM_THREADS="$THREADS" $PY "$here/scripts/bench/peer_syn.py" "$o/t1w_biascorr.nii.gz" "$o/brain_mask.nii.gz" "$p" \
       --affine-iters 1000,100,10 --affine-sampling 0.25 --syn-iters 10,10,5; then
    row "peer: dipy affine+SyN" "copy $copy" "$T_WALL" "$T_CPU" "$T_MIB" \
      "known answer (mm): $($PY "$here/scripts/bench/copy_reg_eval.py" "$SAMPLES/copies.json" "$copy" --map "$p/mni_to_subject.nii" --affine-map "$p/mni_to_subject_affine.nii"); wall peer/ours-cortex-map $(ratio "${cm% *}" "$T_WALL")"
  else row "peer: dipy affine+SyN" "copy $copy" - - - "FAILED (see $WORK/last.err)"; fi
done

# Philips' copies: a head that is not the template (data/samples/philips-copies.json: Colin27's
# oblique-bias, asl-warp and pir-warp5 transforms and three more warps, applied to the Philips scan
# by make-samples --source). No MNI answer is known, so the truth is the Philips plan's own targets and
# registration carried through each copy's transform: consistency, which Colin27's copies flatter
# (there the subject is the template). dipy SyN's consistency on philips-pir-warp5 beside ours.
if [ -f "$DATA/philips-mprage/T1w.nii.gz" ] && [ -f "$WORK/pipeline-philips/targets.json" ]; then
  d="$WORK/pipeline-philips"; PS="$WORK/philips-samples"
  rm -f "$WORK/philips-copy-targets.txt" "$WORK/philips-copy-targets-nearest.txt" "$WORK/philips-copy-consistency.txt"
  nearest_pick "$d"
  "$BIN/make-samples" --spec "$here/data/samples/philips-copies.json" --source "$DATA/philips-mprage/T1w.nii.gz" \
    --out "$PS" --quiet --threads "$THREADS"
  # Each copy as NAME:WARP_MM (the spec's warp_mm; 0 for a rigid copy).
  for entry in $($PY -c "import json, sys; print(' '.join(f\"{c['name']}:{c.get('warp_mm', 0.0)}\" for c in json.load(open(sys.argv[1]))['copies']))" "$PS/copies.json"); do
    copy=${entry%%:*} warp=${entry#*:}
    o="$WORK/pipeline-$copy"; rm -rf "$o"; mkdir -p "$o"
    plan_subject "$PS/$copy.nii.gz" "$o" "${TARGETS[@]}" --threads "$THREADS" --no-efield \
      2> "$WORK/pipeline-$copy.log" > /dev/null || {
      row pipeline "copy $copy" - - - "FAILED: $(grep error "$WORK/pipeline-$copy.log" | tail -1)"; continue; }
    "$BIN/bench-eval" copy-targets "$PS/copies.json" "$copy" "$d/targets.json" "$o/targets.json" > "$o/copy-targets.txt"
    cat "$o/copy-targets.txt" >> "$WORK/philips-copy-targets.txt"
    nearest_pick "$o" && "$BIN/bench-eval" copy-targets "$PS/copies.json" "$copy" "$d/nearest/targets.json" \
      "$o/nearest/targets.json" >> "$WORK/philips-copy-targets-nearest.txt"
    row target-pick "copy $copy" - - - "cortical/scalp distance to the Philips plan's, coil z angle: $(copy_target_cells "$o/copy-targets.txt")"
    cons=$($PY "$here/scripts/bench/copy_reg_eval.py" "$PS/copies.json" "$copy" --cortex-map "$o" --original "$d")
    echo "$copy $warp $cons" >> "$WORK/philips-copy-consistency.txt"
    row cortex-map "copy $copy" - - - "consistency with the Philips registration (mm, 200 cortical points): $cons"
  done
  [ -s "$WORK/philips-copy-targets.txt" ] && row target-pick "Philips copies, all" - - - "$(copy_target_summary "$WORK/philips-copy-targets.txt"); per target: $(copy_target_by_name "$WORK/philips-copy-targets.txt")"
  [ -s "$WORK/philips-copy-targets-nearest.txt" ] && row target-pick "Philips copies, all, --snap nearest" - - - "$(copy_target_summary "$WORK/philips-copy-targets-nearest.txt"); per target: $(copy_target_by_name "$WORK/philips-copy-targets-nearest.txt")"
  # The warped copies together (the rigid one is a different question: the grid, bias and noise).
  [ -s "$WORK/philips-copy-consistency.txt" ] && row cortex-map "Philips warped copies" - - - "$(
    awk '$2 != 0 { n++; for (i = 3; i <= 5; i++) { split($i, kv, "="); s[kv[1]] += kv[2]; if (kv[1] == "max" && kv[2] > m) m = kv[2] } }
         END { printf "consistency over %d copies (mm): mean of means %.3f, mean p90 %.3f, max %.3f", n, s["mean"] / n, s["p90"] / n, m }' \
      "$WORK/philips-copy-consistency.txt")"
  o="$WORK/pipeline-philips-pir-warp5"
  if [ -f "$o/to_mni_warp.nii.gz" ]; then
    ok=1
    for n in philips philips-pir-warp5; do
      p="$WORK/peer-dipy-syn-$n"; rm -rf "$p"
      env OMP_NUM_THREADS="$THREADS" $PY "$here/scripts/bench/peer_syn.py" "$WORK/pipeline-$n/t1w_biascorr.nii.gz" \
        "$WORK/pipeline-$n/brain_mask.nii.gz" "$p" --affine-iters 1000,100,10 --affine-sampling 0.25 --syn-iters 10,10,5 \
        > "$WORK/peer-dipy-syn-$n.log" 2>&1 || ok=0
    done
    if [ "$ok" = 1 ]; then
      row "peer: dipy affine+SyN" "copy philips-pir-warp5" - - - "consistency with its own Philips registration (mm): $($PY "$here/scripts/bench/copy_reg_eval.py" "$PS/copies.json" philips-pir-warp5 --map "$WORK/peer-dipy-syn-philips-pir-warp5/mni_to_subject.nii" --original "$WORK/peer-dipy-syn-philips/mni_to_subject.nii")"
    else row "peer: dipy affine+SyN" "copy philips-pir-warp5" - - - "FAILED (see $WORK/peer-dipy-syn-*.log)"; fi
  fi
fi
