#!/usr/bin/env bash
# bidsify.sh WORK DEST KEY [SOURCE]: copies one subject's plan into BIDS-derivatives names, with a
# JSON sidecar per image ("Sources": SOURCE, a bids:: URI of the raw T1w) and the dseg look-up table.
# Rules checked by tests/cluster/check_bids.py (docs/pipeline.md). Files that are not BIDS
# (transforms, surfaces, targets, efield maps, navigator exports in KEY_plan/) are listed in .bidsignore.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bidsify.sh WORK DEST KEY [SOURCE]" >&2; exit 2; }
work=$1; dest=$2; key=$3; source=${4:-}
mkdir -p "$dest"
sources=""
[ -n "$source" ] && sources="\"Sources\": [\"$source\"], "
# put FILE NAME [SIDECAR-JSON-FIELDS]: copy (temp + rename), then the sidecar for images.
put() {
  local from=$work/$1 to=$dest/${key}_$2
  command cp -f "$from" "$to.tmp$$" && mv -f "$to.tmp$$" "$to"
  case $2 in
    *.nii.gz) printf '{%s%s}\n' "$sources" "${3:-\"Description\": \"tmsplan\"}" > "${to%.nii.gz}.json" ;;
  esac
}
put t1w_biascorr.nii.gz desc-biascorr_T1w.nii.gz '"SkullStripped": false, "Description": "N4-style bias-corrected T1w (skull-strip)"'
put brain_mask.nii.gz desc-brain_mask.nii.gz '"Type": "Brain", "Description": "brain mask (skull-strip)"'
put head_mask.nii.gz desc-head_mask.nii.gz '"Description": "head mask: everything inside the scalp (skull-strip)"'
put dseg.nii.gz dseg.nii.gz '"Description": "tissue classes, see the .tsv (segment)"'
printf 'index\tname\tabbreviation\n1\tcerebrospinal fluid\tCSF\n2\tgray matter\tGM\n3\twhite matter\tWM\n' > "$dest/${key}_dseg.tsv"
put probseg_csf.nii.gz label-CSF_probseg.nii.gz '"Description": "CSF probability (segment)"'
put probseg_gm.nii.gz label-GM_probseg.nii.gz '"Description": "grey matter probability (segment)"'
put probseg_wm.nii.gz label-WM_probseg.nii.gz '"Description": "white matter probability (segment)"'
# Not BIDS (yet): .bidsignore lists them.
put to_mni_affine.txt from-T1w_to-MNIColin27_mode-image_desc-affine_xfm.txt
put to_mni_warp.nii.gz from-T1w_to-MNIColin27_mode-image_desc-warp_xfm.nii.gz
put from_mni_affine.txt from-MNIColin27_to-T1w_mode-image_desc-affine_xfm.txt
put from_mni_warp.nii.gz from-MNIColin27_to-T1w_mode-image_desc-warp_xfm.nii.gz
[ -f "$work/scalp.surf.gii" ] && put scalp.surf.gii desc-scalp.surf.gii
[ -f "$work/pial.surf.gii" ] && put pial.surf.gii desc-pial.surf.gii
[ -f "$work/white.surf.gii" ] && put white.surf.gii desc-white.surf.gii
put targets.json desc-tms_targets.json
# The efield step's outputs, when it ran: targets with the field's coil poses, and per target |E|
# near it (volume, and |E| and E.n on the pial surface). Not BIDS: .bidsignore lists *_efield.*.
if [ -f "$work/targets_efield.json" ]; then
  put targets_efield.json desc-efield_targets.json
  for f in "$work"/efield_*.nii.gz; do
    [ -e "$f" ] || continue
    t=${f##*/efield_}
    t=${t%.nii.gz}
    label=${t//[^A-Za-z0-9]/}
    put "efield_$t.nii.gz" "desc-${label}_efield.nii.gz" \
      "\"Description\": \"|E| within 40 mm of target $t at the chosen coil pose, V/m per A/us (efield)\""
    if [ -f "$work/efield_$t.func.gii" ]; then put "efield_$t.func.gii" "desc-${label}_efield.func.gii"; fi
  done
fi
rm -rf "$dest/${key}_plan.tmp$$"
command cp -r "$work/plan" "$dest/${key}_plan.tmp$$"
rm -rf "$dest/${key}_plan"
mv "$dest/${key}_plan.tmp$$" "$dest/${key}_plan"
