#!/usr/bin/env python3
"""Inputs that real scans vary, made from one whole-head T1, and how a plan of each compares.

  robustness.py make T1 HEALTHY_PLAN OUTDIR
      writes OUTDIR/<case>.nii.gz and OUTDIR/<case>.json ({"expect": "plan"|"refuse", "world": 4x4,
      "what": ...}) for each case below. HEALTHY_PLAN is the T1's own plan folder (its brain and head
      masks place the cuts).
  robustness.py compare HEALTHY_PLAN/targets.json CASE.json CASE_PLAN/targets.json
      one line per target: cortical point, coil centre (mm) and coil z (deg) against the healthy
      plan's carried by the case's world transform.

Cases (the answer is known: each is the same head):
  defaced      face below the orbitofrontal cortex and in front of the frontal pole set to 0
  cut-skull    field of view ending 4 mm above the brain (through the skull)
  cut-brain    field of view ending 15 mm below the top of the brain (expect: M1 refused)
  pitch25, yaw35, combo  the head rotated in the world (header only)
  small90, large110      a smaller or larger head: the world scaled by 0.90 or 1.10 (header only)
  narrow                 another head shape: left-right 0.92, front-back 1.06 (header only)
  thick5       5 mm slices (a Gaussian slice profile of FWHM 5 mm, every fifth slice kept)
  scaled       intensities times 1e-4, float
  offset       5 % of the maximum added everywhere
  stripped     everything outside the brain mask set to 0 (expect: refused)
  uni-noise    the dark background replaced by uniform noise, as in MP2RAGE's UNI (expect: refused)
"""
import json
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def rot(axis, deg):
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    m = np.eye(4)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def world_points(img, mask):
    ijk = np.argwhere(mask)
    return (img.affine @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]


def make(t1_path, plan, out):
    t1 = nib.load(t1_path)
    data = np.asarray(t1.dataobj).astype(np.float32)
    brain = np.asarray(nib.load(f"{plan}/brain_mask.nii.gz").dataobj) > 0
    grid = np.indices(data.shape).reshape(3, -1).T
    ras = (t1.affine @ np.c_[grid, np.ones(len(grid))].T).T[:, :3].reshape(data.shape + (3,))
    b = world_points(t1, brain)
    front = b[:, 1].max()
    orbit_floor = b[b[:, 1] > front - 25, 2].min()
    kz = int(np.argmax(np.abs(t1.affine[2, :3])))  # the voxel axis closest to superior
    top_k = np.where(brain.any(axis=tuple(a for a in range(3) if a != kz)))[0]
    up = t1.affine[2, kz] > 0
    brain_top = top_k.max() if up else top_k.min()
    cases = {}

    def save(name, arr, expect, what, world=np.eye(4), affine=None):
        a = t1.affine if affine is None else affine
        nib.save(nib.Nifti1Image(arr.astype(np.float32), a), f"{out}/{name}.nii.gz")
        cases[name] = {"expect": expect, "world": world.tolist(), "what": what}
        json.dump(cases[name], open(f"{out}/{name}.json", "w"))

    face = (ras[..., 2] < orbit_floor + 5) & (ras[..., 1] > front - 30) & ~brain
    save("defaced", np.where(face, 0, data), "plan", "face in front of the frontal pole, below the orbits, set to 0")

    def cut(k_last):
        sl = [slice(None)] * 3
        sl[kz] = slice(0, k_last + 1) if up else slice(k_last, None)
        aff = t1.affine.copy()
        if not up:
            aff[:3, 3] = (t1.affine @ np.r_[[0, 0, 0][:kz] + [k_last] + [0, 0, 0][kz + 1:], 1])[:3]
        return data[tuple(sl)], aff

    arr, aff = cut(brain_top + 4 if up else brain_top - 4)
    save("cut-skull", arr, "plan", "field of view ends 4 mm above the brain", affine=aff)
    arr, aff = cut(brain_top - 15 if up else brain_top + 15)
    save("cut-brain", arr, "refuse M1", "field of view ends 15 mm below the top of the brain", affine=aff)
    for name, m in {"pitch25": rot("x", 25), "yaw35": rot("z", 35),
                    "combo": rot("x", 20) @ rot("z", -25) @ rot("y", 15)}.items():
        save(name, data, "plan", "the head rotated in the world (header only)", world=m, affine=m @ t1.affine)
    # Head size and shape vary between people by about this much; the answer scales with the world.
    for name, diag, what in [("small90", (0.90, 0.90, 0.90), "a head 10 % smaller (the world scaled by 0.90)"),
                             ("large110", (1.10, 1.10, 1.10), "a head 10 % larger (the world scaled by 1.10)"),
                             ("narrow", (0.92, 1.06, 1.0), "a narrower, longer head (x 0.92, y 1.06)")]:
        m = np.diag(list(diag) + [1.0])
        save(name, data, "plan", what + ", header only", world=m, affine=m @ t1.affine)
    # 5 mm slices along the axis closest to superior: a Gaussian slice profile of FWHM 5 mm, then
    # every fifth slice (the Philips scan's voxels are 1 mm).
    step = int(round(5.0 / np.linalg.norm(t1.affine[:3, kz])))
    thick = ndimage.gaussian_filter1d(data, 5.0 / 2.3548 / np.linalg.norm(t1.affine[:3, kz]), axis=kz)
    sl = [slice(None)] * 3
    sl[kz] = slice(0, None, step)
    aff = t1.affine.copy()
    aff[:3, kz] *= step
    save("thick5", thick[tuple(sl)], "plan", "5 mm slices (Gaussian slice profile)", affine=aff)
    save("scaled", data * 1e-4, "plan", "intensities x 1e-4")
    save("offset", data + 0.05 * data.max(), "plan", "5 % of the maximum added everywhere")
    save("stripped", np.where(brain, data, 0), "refuse", "skull-stripped (outside the brain mask set to 0)")
    top = np.percentile(data, 99)
    rng = np.random.default_rng(7)
    noisy = data.copy()
    dark = noisy < 0.05 * top
    noisy[dark] = rng.uniform(0, top, dark.sum())
    save("uni-noise", noisy, "refuse", "dark voxels replaced by uniform noise (MP2RAGE UNI)")


def compare(healthy, case, plan):
    world = np.array(json.load(open(case))["world"])
    base = {t["name"]: t for t in json.load(open(healthy))["targets"]}
    for t in json.load(open(plan))["targets"]:
        h = base.get(t["name"])
        if h is None:
            continue
        carry = lambda v: (world @ np.append(v, 1.0))[:3]
        dc = np.linalg.norm(carry(h["cortical_ras"]) - t["cortical_ras"])
        dcoil = np.linalg.norm(carry(h["coil_centre_ras"]) - t["coil_centre_ras"])
        # A direction normal to the scalp goes with the inverse transpose (a rotation: the same).
        za = np.linalg.inv(world[:3, :3]).T @ np.array(h["coil_pose_ras"])[:3, 2]
        zb = np.array(t["coil_pose_ras"])[:3, 2]
        ang = np.degrees(np.arccos(np.clip(za @ zb / np.linalg.norm(za) / np.linalg.norm(zb), -1, 1)))
        print(f"{t['name']} {dc:.2f} {dcoil:.2f} {ang:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "make":
        make(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    else:
        sys.exit(__doc__)
