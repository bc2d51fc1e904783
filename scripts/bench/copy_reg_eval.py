#!/usr/bin/python3
"""Known-answer registration error on a Colin27 copy, for ours and for a peer, at the same points.

usage: copy_reg_eval.py COPIES_JSON NAME (--cortex-map DIR | --map MNI_TO_SUBJECT.nii [--affine-map A.nii])
                         [--original DIR_OR_MAP]
       copy_reg_eval.py COPIES_JSON NAME --exact-mask OUT.nii.gz

--original: the copy's head is not the template (data/samples/philips-copies.json), so there is no
known MNI answer; the truth is then the original's own registration (its cortex-map folder, or a
peer's map of the same kind as --map) carried through the copy's known transform: a consistency
figure, which a registration that is right only up to the anatomy's ambiguity can still miss.

--exact-mask writes the copy's exact brain mask instead (ch2bet carried through the known
transform onto the copy's grid, linear, >= 0.5), the mask tests/test_cortexmap.cpp's known-answer
test gives register_deformable, so that a peer (peer_syn.py) can run on the same input.

Points: 200 Colin27 cortical points (ch2bet brain voxels 1.5-4 mm inside its edge, evenly spread,
cortexmap_eval.cortical_points); truth: the copy's known transform (cortexmap_eval.Known, which
re-implements tests/tools_src/sample_transform.hpp). Ours: MNI -> subject by reading the transform
files with the ANTs convention (cortexmap_eval.FileMap). A peer: a NIfTI on the template grid holding,
per template voxel, the subject RAS point it lands on (scripts/bench/peer_syn.py writes one),
sampled trilinearly. Prints "mean=.. p90=.. max=.. affine_mean=.. affine_max=.. n=.." (mm).
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cortexmap_eval import FileMap, Known, cortical_points  # noqa: E402


def coord_map(path, pts):
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float64)
    v = np.linalg.inv(img.affine)[:3, :3] @ pts.T + np.linalg.inv(img.affine)[:3, 3:4]
    return np.stack([ndimage.map_coordinates(np.nan_to_num(data[..., c], nan=1e9), v, order=1) for c in range(3)], axis=1)


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("copies")
ap.add_argument("name")
ap.add_argument("--cortex-map")
ap.add_argument("--map")
ap.add_argument("--affine-map")
ap.add_argument("--exact-mask")
ap.add_argument("--original")
a = ap.parse_args()
copy = next(c for c in json.load(open(a.copies))["copies"] if c["name"] == a.name)
if a.exact_mask:
    img = nib.load(os.path.join(os.path.dirname(os.path.abspath(a.copies)), a.name + ".nii.gz"))
    bet = nib.load(os.path.join("/usr/share/mricron/templates", "ch2bet.nii.gz"))
    k = Known(copy)
    ijk = np.indices(img.shape[:3], dtype=np.float64).reshape(3, -1)
    q = (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).T
    p0 = (q - k.t) @ np.linalg.inv(k.r).T  # copy -> original, before the warp
    p = p0 + k.u(p0)
    v = np.linalg.inv(bet.affine)[:3, :3] @ p.T + np.linalg.inv(bet.affine)[:3, 3:4]
    inside = ndimage.map_coordinates((np.asarray(bet.dataobj) > 0).astype(np.float32), v, order=1, cval=0.0)
    mask = (inside >= 0.5).reshape(img.shape[:3]).astype(np.uint8)
    nib.save(nib.Nifti1Image(mask, img.affine), a.exact_mask)
    print(f"{a.exact_mask}: {int(mask.sum())} voxels")
    sys.exit(0)
pts = cortical_points(200)
if a.original:
    original = coord_map(a.original, pts) if a.original.endswith(".nii") else FileMap(a.original).to_subject(pts)
    truth = Known(copy).forward(original)
else:
    truth = Known(copy).forward(pts)
if a.cortex_map:
    fm = FileMap(a.cortex_map)
    got, aff = fm.to_subject(pts), (None if a.original else fm.to_subject(pts, warp=False))
else:
    got = coord_map(a.map, pts)
    aff = coord_map(a.affine_map, pts) if a.affine_map and not a.original else None
e = np.linalg.norm(got - truth, axis=1)
out = f"mean={e.mean():.3f} p90={np.percentile(e, 90):.3f} max={e.max():.3f}"
if aff is not None:
    ea = np.linalg.norm(aff - truth, axis=1)
    out += f" affine_mean={ea.mean():.3f} affine_max={ea.max():.3f}"
print(out + f" n={len(pts)}")
