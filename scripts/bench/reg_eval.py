#!/usr/bin/python3
"""Registration figures for the bench, computed the same way for cortex-map and for a peer.

usage: reg_eval.py SUBJECT_DIR (--cortex-map DIR | --map MAP.nii.gz [--affine-map MAP.nii.gz])
                   [--own-template-mask MASK.nii.gz] [--subject-mask MASK.nii.gz]
                   [--template-dseg DSEG.nii.gz]

SUBJECT_DIR holds skull-strip's t1w_biascorr.nii.gz and brain_mask.nii.gz and segment's dseg.nii.gz.
The template->subject map comes from cortex-map's transform files (read with the ANTs convention,
cortexmap_eval.FileMap) or from a peer's map (template grid, x y z 3: subject world RAS mm of every
template voxel, NaN where off the subject grid, as peer_syn.py writes it). Prints one line:

  dice=D dice_affine=DA ncc_affine=NA ncc=N m1_gm_mm=M

- dice: the subject brain mask carried into MNI (linear, >= 0.5) against ch2bet > 0; dice_affine
  the same through the affine stage alone. As cortex-map's record figure.
- dice_own (with --own-template-mask): the same carried mask against our own skull-strip of the
  template (ch2.nii.gz), so both masks follow one definition of the brain's edge. ch2bet is BET's
  tight mask without the outer CSF; a change of where skull-strip puts the edge moves the ch2bet
  figure on every head alike (Colin27's own mask against ch2bet is its ceiling), not this one.
- dice_ref (with --subject-mask): another mask of the subject on its grid (e.g. the HD-BET
  reference of the Philips scan) carried the same way against ch2bet > 0. HD-BET, like BET, leaves
  out the CSF over the cortex, so this scores the map with two masks of one definition neither of
  which is ours; ref_vs_brain is that mask's Dice with skull-strip's on the subject grid.
- dice_wm, dice_gm, dice_tissue (with --template-dseg): the subject's segment labels carried into
  MNI (nearest label) against our segment of the template (ch2.nii.gz through skull-strip and
  segment): WM, GM, and GM+WM (the brain without its CSF). Both label maps come from one method, so
  no mask definition enters: these score how well the map lays the subject's anatomy (the GM/WM
  boundary, the pial surface) on the template's, which the brain Dice cannot.
- ncc: NCC over the template brain on the 2 mm grid of the brain-masked, normalised images, as
  cortex-map's record figure (lib/registration/deformable.cpp): template ch2 x (ch2bet grown 4 mm),
  subject T1 x (brain grown 12 mm), each / its 99.5th percentile inside and clipped, blurred 1 mm.
- m1_gm_mm: MNI (-37,-21,58) carried into the subject, its distance to GM (dseg == 2), as
  cortexmap_eval.py (and the record's m1_hand.distance_to_gm_mm).
"""
import argparse
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = "/usr/share/mricron/templates"
M1_MNI = np.array([-37.0, -21.0, 58.0])


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def normalised(img, mask):
    top = np.percentile(img[mask], 99.5)
    return np.where(mask, np.minimum(img, top), 0.0) / top


def sample(data, affine, world, order=1):
    """data at world points (n, 3) RAS mm, 0 outside."""
    v = np.linalg.inv(affine)
    ijk = world @ v[:3, :3].T + v[:3, 3]
    return ndimage.map_coordinates(data, ijk.T, order=order, mode="constant", cval=0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("subject")
    ap.add_argument("--cortex-map")
    ap.add_argument("--map")
    ap.add_argument("--affine-map")
    ap.add_argument("--own-template-mask")
    ap.add_argument("--subject-mask")
    ap.add_argument("--template-dseg")
    a = ap.parse_args()
    tpl_img = nib.load(os.path.join(TEMPLATES, "ch2.nii.gz"))
    tb = np.asarray(nib.load(os.path.join(TEMPLATES, "ch2bet.nii.gz")).dataobj) > 0
    shape, taff = tb.shape, tpl_img.affine
    ijk = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    tworld = ijk @ taff[:3, :3].T + taff[:3, 3]
    del ijk

    # Template voxel -> subject world, full and affine only.
    if a.cortex_map:
        from cortexmap_eval import FileMap
        fm = FileMap(a.cortex_map)
        maps = {"": lambda idx: fm.to_subject(tworld[idx]),
                "_affine": lambda idx: fm.to_subject(tworld[idx], warp=False)}
    else:
        full = np.asarray(nib.load(a.map).dataobj, dtype=np.float64).reshape(-1, 3)
        maps = {"": lambda idx: full[idx]}
        if a.affine_map:
            aff = np.asarray(nib.load(a.affine_map).dataobj, dtype=np.float64).reshape(-1, 3)
            maps["_affine"] = lambda idx: aff[idx]

    s_img = nib.load(os.path.join(a.subject, "t1w_biascorr.nii.gz"))
    saff = s_img.affine
    t1 = np.asarray(s_img.dataobj, dtype=np.float64)
    brain = np.asarray(nib.load(os.path.join(a.subject, "brain_mask.nii.gz")).dataobj) > 0.5
    ref = None
    if a.subject_mask:
        ref_img = nib.load(a.subject_mask)
        if ref_img.shape[:3] != brain.shape or not np.allclose(ref_img.affine, saff, atol=1e-3):
            sys.exit(f"reg_eval.py: {a.subject_mask}: not on the grid of {a.subject}/t1w_biascorr.nii.gz")
        ref = np.asarray(ref_img.dataobj) > 0.5
    spacing = np.sqrt((saff[:3, :3] ** 2).sum(axis=0))
    cube = np.ones((3, 3, 3), bool)
    subj = normalised(t1, ndimage.binary_dilation(brain, cube, iterations=int(np.ceil(12 / spacing.min()))))
    subj = ndimage.gaussian_filter(subj, 1.0 / spacing)
    tpl = normalised(np.asarray(tpl_img.dataobj, dtype=np.float64), ndimage.binary_dilation(tb, cube, iterations=4))
    tpl = ndimage.gaussian_filter(tpl, 1.0)
    # The 2 mm level grid: every other template voxel from voxel 0 (lib/registration/pyramid.cpp).
    sub = np.zeros(shape, bool)
    sub[::2, ::2, ::2] = True
    level_brain = ndimage.map_coordinates(tb.astype(np.float64), np.indices(sub[::2, ::2, ::2].shape).reshape(3, -1) * 2.0,
                                          order=1) >= 0.5
    idx2 = np.flatnonzero(sub)[level_brain]
    fixed = tpl.reshape(-1)[idx2]

    dseg_img = nib.load(os.path.join(a.subject, "dseg.nii.gz"))
    labels = np.asarray(dseg_img.dataobj).astype(np.float64)
    tlab = None
    if a.template_dseg:
        t_img = nib.load(a.template_dseg)
        if t_img.shape[:3] != shape or not np.allclose(t_img.affine, taff, atol=1e-3):
            sys.exit(f"reg_eval.py: {a.template_dseg}: not on the grid of {TEMPLATES}/ch2.nii.gz")
        tlab = np.rint(np.asarray(t_img.dataobj)).astype(np.int16)

    out = {}
    all_idx = np.arange(tb.size)
    for key, f in maps.items():
        pts = np.concatenate([f(all_idx[i:i + 2000000]) for i in range(0, tb.size, 2000000)])
        pts[~np.isfinite(pts).all(axis=1)] = 1e6  # NaN: off the subject grid (outside everything)
        carried = sample(brain.astype(np.float64), saff, pts) >= 0.5
        out["dice" + key] = dice(carried.reshape(shape), tb)
        if a.own_template_mask and key == "":
            own = np.asarray(nib.load(a.own_template_mask).dataobj) > 0.5
            out["dice_own"] = dice(carried.reshape(shape), own)
            out["own_vs_ch2bet"] = dice(own, tb)
        if ref is not None and key == "":
            out["dice_ref"] = dice((sample(ref.astype(np.float64), saff, pts) >= 0.5).reshape(shape), tb)
            out["ref_vs_brain"] = dice(ref, brain)
        if tlab is not None and key == "":
            lab = np.rint(sample(labels, dseg_img.affine, pts, order=0)).astype(np.int16).reshape(shape)
            out["dice_wm"] = dice(lab == 3, tlab == 3)
            out["dice_gm"] = dice(lab == 2, tlab == 2)
            out["dice_tissue"] = dice(lab >= 2, tlab >= 2)
        out["ncc" + key] = np.corrcoef(fixed, sample(subj, saff, pts[idx2]))[0, 1]
    m1_idx = np.ravel_multi_index(tuple(np.rint(np.linalg.inv(taff) @ np.append(M1_MNI, 1.0))[:3].astype(int)), shape)
    m1 = maps[""](np.array([m1_idx]))[0]
    gm = labels == 2
    dist = ndimage.distance_transform_edt(~gm, sampling=np.sqrt((dseg_img.affine[:3, :3] ** 2).sum(axis=0)))
    out["m1_gm_mm"] = sample(dist, dseg_img.affine, m1[None, :])[0]
    print(" ".join(f"{k}={v:.3f}" for k, v in out.items()) + f" m1_subject_ras={','.join(f'{x:.1f}' for x in m1)}")


if __name__ == "__main__":
    main()
