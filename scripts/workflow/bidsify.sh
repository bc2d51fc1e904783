#!/usr/bin/env bash
# bidsify.sh WORK DEST KEY: copies one subject's plan into BIDS-derivatives names.
set -euo pipefail
work=$1; dest=$2; key=$3
mkdir -p "$dest"
cp() { command cp -f "$work/$1" "$dest/${key}_$2"; }
cp t1w_biascorr.nii.gz desc-biascorr_T1w.nii.gz
cp brain_mask.nii.gz desc-brain_mask.nii.gz
cp head_mask.nii.gz desc-head_mask.nii.gz
cp dseg.nii.gz dseg.nii.gz
cp probseg_csf.nii.gz label-CSF_probseg.nii.gz
cp probseg_gm.nii.gz label-GM_probseg.nii.gz
cp probseg_wm.nii.gz label-WM_probseg.nii.gz
cp to_mni_affine.txt from-T1w_to-MNIColin27_mode-image_desc-affine_xfm.txt
cp to_mni_warp.nii.gz from-T1w_to-MNIColin27_mode-image_desc-warp_xfm.nii.gz
cp from_mni_affine.txt from-MNIColin27_to-T1w_mode-image_desc-affine_xfm.txt
cp from_mni_warp.nii.gz from-MNIColin27_to-T1w_mode-image_desc-warp_xfm.nii.gz
cp scalp.surf.gii hemi-both_desc-scalp_surf.gii 2>/dev/null || true
cp pial.surf.gii hemi-both_pial.surf.gii 2>/dev/null || true
cp white.surf.gii hemi-both_white.surf.gii 2>/dev/null || true
cp targets.json desc-tms_targets.json
mkdir -p "$dest/${key}_plan"
command cp -rf "$work/plan/." "$dest/${key}_plan/"
