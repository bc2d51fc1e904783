#!/usr/bin/python3
"""Evaluation helper for the segment benchmark (scripts/bench/segment.sh). Needs numpy, nibabel
(Debian python3-nibabel) and, for the peer run, dipy (python3-dipy).

  segment_eval.py dice-fast SEG_DIR REF_DIR          Dice of GM/WM (probseg > 0.5) against FAST
  segment_eval.py copy-mask COPIES NAME MASK OUT     carries a mask of the original into a copy's grid
  segment_eval.py copy-dice COPIES NAME ORIG COPY    Dice GM/WM of a copy's dseg brought back to the original
  segment_eval.py disagree SEG_DIR T1 REF_DIR        where we and FAST disagree: intensity, location
  segment_eval.py dipy T1 MASK REF_DIR               dipy TissueClassifierHMRF as a peer: Dice and seconds
"""
import json
import math
import sys
import time

import nibabel as nib
import numpy as np


def dice(a, b):
    s = a.sum() + b.sum()
    return 2.0 * np.logical_and(a, b).sum() / s if s else 1.0


def load(path):
    return np.asanyarray(nib.load(path).dataobj)


def fast_maps(ref_dir):
    return load(ref_dir + "/pve_gm_fast.nii.gz") > 0.5, load(ref_dir + "/pve_wm_fast.nii.gz") > 0.5


def dice_fast(seg_dir, ref_dir):
    gm_ref, wm_ref = fast_maps(ref_dir)
    gm = load(seg_dir + "/probseg_gm.nii.gz") > 0.5
    wm = load(seg_dir + "/probseg_wm.nii.gz") > 0.5
    dseg = load(seg_dir + "/dseg.nii.gz")
    print(f"dice_vs_fast gm {dice(gm, gm_ref):.4f} wm {dice(wm, wm_ref):.4f} "
          f"(dseg labels: gm {dice(dseg == 2, gm_ref):.4f} wm {dice(dseg == 3, wm_ref):.4f})")


# The known transform of a copy, as tests/tools_src/sample_transform.hpp defines it.
class KnownTransform:
    centre = np.array([0.0, -18.0, 18.0])

    def __init__(self, c):
        r = np.radians(c["rotation_deg"])

        def rot(axis, angle):
            m = np.eye(3)
            i, j = [(1, 2), (0, 2), (0, 1)][axis]
            cs, sn = math.cos(angle), math.sin(angle)
            m[i, i], m[j, j] = cs, cs
            if axis == 1:
                m[i, j], m[j, i] = sn, -sn
            else:
                m[i, j], m[j, i] = -sn, sn
            return m

        self.rot = rot(2, r[2]) @ rot(1, r[1]) @ rot(0, r[0])
        self.shift = self.centre - self.rot @ self.centre + np.array(c["translation_mm"], float)
        self.warp = float(c.get("warp_mm", 0.0))
        a = np.array(c["original_to_copy_affine"], float)
        assert np.allclose(a[:3, :3], self.rot, atol=1e-9) and np.allclose(a[:3, 3], self.shift, atol=1e-6)

    def u(self, p):  # p: (n, 3)
        if self.warp == 0.0:
            return np.zeros_like(p)
        x = (p - self.centre) / 70.0
        env = np.exp(-0.5 * (x * x).sum(1))
        return self.warp * env[:, None] * np.stack([
            np.sin(np.pi * x[:, 1]) * np.cos(0.5 * np.pi * x[:, 2]),
            np.sin(np.pi * x[:, 2]) * np.cos(0.5 * np.pi * x[:, 0]),
            np.sin(np.pi * x[:, 0]) * np.cos(0.5 * np.pi * x[:, 1])], 1)

    def backward(self, q):  # copy world -> original world
        p0 = (q - self.shift) @ self.rot  # rot^-1 = rot^T
        return p0 + self.u(p0)

    def forward(self, p):  # original world -> copy world
        p0 = p.copy()
        for _ in range(100):
            nxt = p - self.u(p0)
            done = np.abs(nxt - p0).max() < 1e-9
            p0 = nxt
            if done:
                break
        return p0 @ self.rot.T + self.shift


def copy_entry(copies_json, name):
    spec = json.load(open(copies_json))
    for c in spec["copies"]:
        if c["name"] == name:
            return c
    sys.exit(f"no copy named {name} in {copies_json}")


def sample_nearest(data, affine, world):
    ijk = np.rint(np.c_[world, np.ones(len(world))] @ np.linalg.inv(affine).T)[:, :3].astype(np.int64)
    ok = np.all((ijk >= 0) & (ijk < np.array(data.shape)), 1)
    out = np.zeros(len(world), data.dtype)
    out[ok] = data[ijk[ok, 0], ijk[ok, 1], ijk[ok, 2]]
    return out


def world_of(shape, affine):
    ijk = np.indices(shape).reshape(3, -1).T
    return (np.c_[ijk, np.ones(len(ijk))] @ affine.T)[:, :3]


def copy_mask(copies_json, name, mask_path, out_path):
    import os
    c = copy_entry(copies_json, name)
    t = KnownTransform(c)
    copy_img = nib.load(os.path.join(os.path.dirname(copies_json), os.path.basename(c["path"])))
    src = nib.load(mask_path)
    mask = (np.asanyarray(src.dataobj) > 0).astype(np.uint8)
    q = world_of(copy_img.shape, copy_img.affine)
    out = sample_nearest(mask, src.affine, t.backward(q)).reshape(copy_img.shape)
    nib.save(nib.Nifti1Image(out, copy_img.affine), out_path)


def copy_dice(copies_json, name, orig_dseg, copy_dseg):
    c = copy_entry(copies_json, name)
    t = KnownTransform(c)
    orig = nib.load(orig_dseg)
    ref = np.asanyarray(orig.dataobj)
    cp = nib.load(copy_dseg)
    back = sample_nearest(np.asanyarray(cp.dataobj), cp.affine, t.forward(world_of(ref.shape, orig.affine)))
    back = back.reshape(ref.shape)
    print(f"copy {name} dice_vs_original gm {dice(back == 2, ref == 2):.4f} wm {dice(back == 3, ref == 3):.4f} "
          f"csf {dice(back == 1, ref == 1):.4f}")


def disagree(seg_dir, t1_path, ref_dir):
    t1 = load(t1_path).astype(np.float64)
    gm_ref, wm_ref = fast_maps(ref_dir)
    gm = load(seg_dir + "/probseg_gm.nii.gz") > 0.5
    wm = load(seg_dir + "/probseg_wm.nii.gz") > 0.5
    csf = load(seg_dir + "/probseg_csf.nii.gz") > 0.5
    for label, sel in [("GM us, not FAST", gm & ~gm_ref), ("GM FAST, not us", gm_ref & ~gm),
                       ("WM us, not FAST", wm & ~wm_ref), ("WM FAST, not us", wm_ref & ~wm),
                       ("agreed GM", gm & gm_ref), ("agreed WM", wm & wm_ref), ("our CSF", csf)]:
        v = t1[sel]
        if v.size == 0:
            print(f"{label:18s} 0 voxels")
            continue
        idx = np.argwhere(sel)
        print(f"{label:18s} {v.size:8d} voxels; T1 p10/p50/p90 {np.percentile(v, 10):8.0f} "
              f"{np.percentile(v, 50):8.0f} {np.percentile(v, 90):8.0f}; centroid ijk {idx.mean(0).round(0)}")


def dipy_peer(t1_path, mask_path, ref_dir):
    from dipy.segment.tissue import TissueClassifierHMRF
    t1 = load(t1_path).astype(np.float64)
    mask = load(mask_path) > 0.5
    box = tuple(slice(a.min(), a.max() + 1) for a in np.nonzero(mask))
    img = np.where(mask, t1, 0.0)[box]
    start = time.time()
    _, final, pve = TissueClassifierHMRF(verbose=False).classify(img, 3, 0.1, max_iter=20)
    seconds = time.time() - start
    gm_ref, wm_ref = fast_maps(ref_dir)
    gm = np.zeros(mask.shape, bool)
    wm = np.zeros(mask.shape, bool)
    gm[box] = (pve[..., 1] > 0.5) & mask[box]
    wm[box] = (pve[..., 2] > 0.5) & mask[box]
    print(f"dipy TissueClassifierHMRF (beta 0.1, 20 iterations) dice_vs_fast gm {dice(gm, gm_ref):.4f} "
          f"wm {dice(wm, wm_ref):.4f} seconds {seconds:.1f}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    table = {"dice-fast": (dice_fast, 2), "copy-mask": (copy_mask, 4), "copy-dice": (copy_dice, 4),
             "disagree": (disagree, 3), "dipy": (dipy_peer, 3)}
    if cmd not in table or len(args) != table[cmd][1]:
        sys.exit(__doc__)
    table[cmd][0](*args)


if __name__ == "__main__":
    main()
