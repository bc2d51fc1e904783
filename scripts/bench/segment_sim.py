#!/usr/bin/python3
"""Simulated T1 heads with known partial-volume truth, for the segment benchmark (issue 15).

  segment_sim.py make SPEC DATA OUT [NAME...]   writes OUT/NAME/{t1,mask,truth_csf,truth_gm,truth_wm}.nii.gz
                                                (and lesion_core.nii.gz for lesion heads)
  segment_sim.py eval CASE_DIR SEG_DIR [LABEL]  one line: Dice at 0.5 and mean absolute fraction error
                                                per class, GM/WM volume ratio against the truth
  segment_sim.py lesion CASE_DIR SEG_DIR        share of the cavity core labelled CSF (dseg)
  segment_sim.py real-lesion SPEC DATA NAME OUT the real Philips T1 (whole head) with lesion NAME painted
                                                in (CSF intensity: median T1 where FAST CSF > 0.95 deep
                                                in the brain; soft edge; Rician-like noise of the scan kept):
                                                OUT/t1.nii.gz, OUT/lesion_core.nii.gz (full T1 grid)

SPEC is data/samples/segment_sim.json (tissue values with their sources, sequences, cases, lesions);
DATA the shared data folder (philips-mprage/reference holds the FAST maps and the HD-BET mask).
Deterministic (seeded). Needs numpy, scipy, nibabel (Debian).
"""
import json
import math
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def signal(seq, t1, pd):
    """Steady-state signal of one tissue (T1 in ms, PD relative)."""
    a = math.radians(seq["flip_deg"])
    if seq["type"] == "spgr":
        e1 = math.exp(-seq["TR"] / t1)
        return pd * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1)
    # MPRAGE: ideal inversion at t = 0, n pulses every esp centred on TI, recovery to TR.
    n, esp, ti, tr = seq["n"], seq["esp"], seq["TI"], seq["TR"]
    t_first = ti - (n // 2) * esp
    assert t_first > 0 and t_first + n * esp < tr, "MPRAGE timing does not fit"
    rec = lambda m, dt: 1 - (1 - m) * math.exp(-dt / t1)
    mz = 1.0
    centre = 0.0
    for _ in range(30):  # to the steady state
        m = rec(-mz, t_first)
        for p in range(n):
            if p == n // 2:
                centre = m
            m = rec(m * math.cos(a), esp)
        mz = rec(m, tr - t_first - n * esp)
    return pd * abs(centre) * math.sin(a)


def tissue_signals(spec, case):
    seq = spec["sequences"][case["seq"]]
    tis = spec["tissues"][case["field"]]
    out = {}
    for k in ("csf", "gm", "wm"):
        t1 = tis["T1_ms"][k]
        if k == "csf" and "csf_T1_ms" in case:
            t1 = case["csf_T1_ms"]
        out[k] = signal(seq, t1, tis["PD"][k])
    return out


def load_truth(data):
    ref = os.path.join(data, "philips-mprage", "reference")
    img = nib.load(os.path.join(ref, "pve_gm_fast.nii.gz"))
    gm = np.asanyarray(img.dataobj).astype(np.float32)
    wm = np.asanyarray(nib.load(os.path.join(ref, "pve_wm_fast.nii.gz")).dataobj).astype(np.float32)
    mask = np.asanyarray(nib.load(os.path.join(ref, "brainmask_hdbet.nii.gz")).dataobj) > 0.5
    gm = np.clip(np.where(mask, gm, 0), 0, 1)
    wm = np.clip(np.where(mask, wm, 0), 0, 1)
    s = gm + wm
    over = s > 1
    gm[over] /= s[over]
    wm[over] /= s[over]
    csf = np.where(mask, 1 - gm - wm, 0).astype(np.float32)
    # crop to the mask's box with a 6 mm margin
    nz = np.nonzero(mask)
    box = tuple(slice(max(a.min() - 6, 0), min(a.max() + 7, mask.shape[i])) for i, a in enumerate(nz))
    aff = img.affine.copy()
    aff[:3, 3] += aff[:3, :3] @ np.array([b.start for b in box], float)
    return {"csf": csf[box], "gm": gm[box], "wm": wm[box], "mask": mask[box].astype(np.float32)}, aff


def add_lesion(fr, aff, les):
    """Changes the 1 mm truth fractions in place; returns the cavity core (bool) or None."""
    mask = fr["mask"] > 0.5
    idx = np.argwhere(mask)
    centroid = (aff[:3, :3] @ idx.mean(0)) + aff[:3, 3]
    world = np.stack(np.meshgrid(*[np.arange(s) for s in mask.shape], indexing="ij"), -1).reshape(-1, 3)
    world = (world @ aff[:3, :3].T + aff[:3, 3]).reshape(mask.shape + (3,))
    if les["type"] == "cavity":
        c = centroid + np.array(les["centre_mm"], float)
        ax = np.array(les["semi_axes_mm"], float)
        r = np.sqrt((((world - c) / ax) ** 2).sum(-1))  # 1 on the ellipsoid
        # signed distance (mm) outside the edge, approximated with the smallest semi-axis
        d = (r - 1.0) * ax.min()
        w = np.clip(0.5 - d / les["edge_mm"], 0, 1)  # 1 inside, ramp over edge_mm around the surface
        core = (d < -2.0 - 0.5 * les["edge_mm"]) & mask
    else:  # grown ventricles
        depth = ndimage.distance_transform_edt(mask)
        vent = (fr["csf"] > 0.9) & (depth > 15)
        lab, n = ndimage.label(vent)
        sizes = ndimage.sum(vent, lab, range(1, n + 1))
        vent = np.isin(lab, 1 + np.nonzero(sizes >= 500)[0])  # the ventricles, not sulcal CSF specks
        dist = ndimage.distance_transform_edt(~vent)
        w = np.clip(1.0 - (dist - les["dilate_mm"]) / 2.0, 0, 1)
        w[vent] = 1.0
        w *= mask
        core = (dist <= les["dilate_mm"] - 2.0) & ~vent & mask  # the grown part, 2 mm inside its edge
    w = (w * mask).astype(np.float32)
    fr["gm"] *= 1 - w
    fr["wm"] *= 1 - w
    fr["csf"] = np.where(mask, 1 - fr["gm"] - fr["wm"], 0).astype(np.float32)
    return core


def resample_to(vol, aff, vox, order=1):
    """Carries a 1 mm volume onto a grid of voxel size vox (same axes and box): Gaussian blur of
    the part of the new voxel the old one does not cover, then linear sampling at the new centres."""
    vox = np.asarray(vox, float)
    sp = np.sqrt((aff[:3, :3] ** 2).sum(0))
    sigma = np.sqrt(np.maximum(vox ** 2 - sp ** 2, 0)) / 2.355 / sp
    v = ndimage.gaussian_filter(vol, sigma, mode="nearest") if sigma.max() > 0 else vol
    shape = np.maximum(np.floor(np.array(vol.shape) * sp / vox).astype(int), 1)
    # new voxel i covers old [i*vox/sp - 0.5 + 0.5*vox/sp]
    coords = [(np.arange(n) + 0.5) * (vox[a] / sp[a]) - 0.5 for a, n in enumerate(shape)]
    grid = np.meshgrid(*coords, indexing="ij")
    out = ndimage.map_coordinates(v, grid, order=order, mode="nearest")
    naff = aff.copy()
    naff[:3, :3] = aff[:3, :3] @ np.diag(vox / sp)
    naff[:3, 3] = aff[:3, :3] @ np.array([c[0] for c in coords]) + aff[:3, 3]
    return out.astype(np.float32), naff


def make_case(spec, truth, aff, case, out_dir, lesion=None):
    rng = np.random.default_rng(case["seed"])
    fr = {k: v.copy() for k, v in truth.items()}
    core = add_lesion(fr, aff, lesion) if lesion else None
    sig = tissue_signals(spec, case)
    # smooth tissue texture (+-3 % sd, 5 mm) so that pure classes are not constant
    tex = {k: 1 + 0.03 * ndimage.gaussian_filter(rng.standard_normal(fr["gm"].shape), 2.0) /
           ndimage.gaussian_filter(rng.standard_normal((40, 40, 40)), 2.0).std() for k in ("gm", "wm")}
    clean = sig["csf"] * fr["csf"] + sig["gm"] * fr["gm"] * tex["gm"] + sig["wm"] * fr["wm"] * tex["wm"]
    vox = case["voxel_mm"]
    res = {}
    for k in ("csf", "gm", "wm", "mask"):
        res[k], naff = resample_to(fr[k], aff, vox)
    img, _ = resample_to(clean.astype(np.float32), aff, vox)
    mask = res["mask"] > 0.5
    # truth: fractions normalised inside the mask
    tot = res["csf"] + res["gm"] + res["wm"]
    for k in ("csf", "gm", "wm"):
        res[k] = np.where(mask, res[k] / np.maximum(tot, 1e-6), 0).astype(np.float32)
    # bias field: tilted plane plus a broad bump, amplitude +-bias
    shape = img.shape
    u = [np.linspace(-1, 1, n) for n in shape]
    X, Y, Z = np.meshgrid(*u, indexing="ij")
    dirn = rng.standard_normal(3)
    dirn /= np.linalg.norm(dirn)
    c = rng.uniform(-0.5, 0.5, 3)
    field = 0.6 * (dirn[0] * X + dirn[1] * Y + dirn[2] * Z) + 0.8 * np.exp(-((X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2) / 0.5) - 0.4
    field = 1 + case["bias"] * field / max(np.abs(field).max(), 1e-6)
    sd = sig["wm"] / case["snr"]
    noisy = np.sqrt((img * field + sd * rng.standard_normal(shape)) ** 2 + (sd * rng.standard_normal(shape)) ** 2)
    scale = 1000.0 / sig["wm"]  # WM near 1000, stored as float32
    os.makedirs(out_dir, exist_ok=True)
    save = lambda a, name, dt: nib.save(nib.Nifti1Image(a.astype(dt), naff), os.path.join(out_dir, name))
    save(noisy * scale, "t1.nii.gz", np.float32)
    save(mask, "mask.nii.gz", np.uint8)
    for k in ("csf", "gm", "wm"):
        save(res[k], f"truth_{k}.nii.gz", np.float32)
    if core is not None:
        c2, _ = resample_to(core.astype(np.float32), aff, vox)
        save((c2 > 0.99) & mask, "lesion_core.nii.gz", np.uint8)
    gw = sig["gm"] / sig["wm"]
    cw = sig["csf"] / sig["wm"]
    print(f"{os.path.basename(out_dir)}: {shape[0]}x{shape[1]}x{shape[2]} at {vox} mm; CSF/GM/WM signal "
          f"{cw:.2f}/{gw:.2f}/1; GM-WM contrast-to-noise {(1 - gw) * case['snr']:.1f}; bias {case['bias']}")


def make(spec_path, data, out, names):
    spec = json.load(open(spec_path))
    truth, aff = load_truth(data)
    plain = spec["cases"] + spec.get("contrast_cases", []) + spec["clinical_cases"]
    cases = {c["name"]: c for c in plain}
    todo = [(c, None) for c in plain]
    todo += [(dict(cases[l["base"]], name=l["name"]), l) for l in spec["lesions"]]
    for case, les in todo:
        if names and case["name"] not in names:
            continue
        make_case(spec, truth, aff, case, os.path.join(out, case["name"]), les)


def load(path):
    return np.asanyarray(nib.load(path).dataobj)


def dice(a, b):
    s = a.sum() + b.sum()
    return 2.0 * np.logical_and(a, b).sum() / s if s else 1.0


def evaluate(case_dir, seg_dir, label=""):
    mask = load(os.path.join(case_dir, "mask.nii.gz")) > 0
    parts = []
    vol = {}
    for k in ("csf", "gm", "wm"):
        t = load(os.path.join(case_dir, f"truth_{k}.nii.gz"))[mask]
        p = load(os.path.join(seg_dir, f"probseg_{k}.nii.gz"))[mask].astype(np.float64)
        parts.append(f"{k} dice {dice(p > 0.5, t > 0.5):.3f} mae {np.abs(p - t).mean():.3f}")
        vol[k] = (p.sum(), t.sum())
    ratio = (vol["gm"][0] / vol["wm"][0]) / (vol["gm"][1] / vol["wm"][1]) - 1
    print(f"{label or os.path.basename(case_dir)}: " + "; ".join(parts) + f"; GM/WM volume ratio {100 * ratio:+.1f} %")


def lesion(case_dir, seg_dir):
    core = load(os.path.join(case_dir, "lesion_core.nii.gz")) > 0
    dseg = load(os.path.join(seg_dir, "dseg.nii.gz"))
    n = int(core.sum())
    share = (dseg[core] == 1).mean() if n else float("nan")
    print(f"{os.path.basename(case_dir)}: cavity core {n} voxels, labelled CSF {100 * share:.1f} %, "
          f"GM {100 * (dseg[core] == 2).mean():.1f} %, WM {100 * (dseg[core] == 3).mean():.1f} %")


def real_lesion(spec_path, data, name, out):
    spec = json.load(open(spec_path))
    les = {l["name"]: l for l in spec["lesions"]}[name]
    img = nib.load(os.path.join(data, "philips-mprage", "T1w.nii.gz"))
    t1 = np.asanyarray(img.dataobj).astype(np.float32)
    truth, aff = load_truth(data)
    fr = {k: v.copy() for k, v in truth.items()}
    mask = fr["mask"] > 0.5
    depth = ndimage.distance_transform_edt(mask)
    # the box of load_truth inside the full grid
    off = np.rint(np.linalg.solve(img.affine, aff)[:3, 3]).astype(int)
    box = tuple(slice(o, o + n) for o, n in zip(off, mask.shape))
    csf_level = float(np.median(t1[box][(fr["csf"] > 0.95) & (depth > 15)]))
    before = {k: v.copy() for k, v in fr.items()}
    core = add_lesion(fr, aff, les)
    w = np.clip(fr["csf"] - before["csf"], 0, 1) / np.maximum(1 - before["csf"], 1e-6)  # share turned to CSF
    w = np.where(mask, np.clip(w, 0, 1), 0)
    sub = t1[box]
    rng = np.random.default_rng(1)
    noise = float(np.median(np.abs(sub[mask] - ndimage.uniform_filter(sub, 3)[mask]))) * 1.4826
    sub[:] = sub * (1 - w) + w * (csf_level + noise * rng.standard_normal(sub.shape))
    os.makedirs(out, exist_ok=True)
    hdr = img.header.copy()
    hdr.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(t1, img.affine, hdr), os.path.join(out, "t1.nii.gz"))
    full = np.zeros(t1.shape, np.uint8)
    full[box] = core
    nib.save(nib.Nifti1Image(full, img.affine), os.path.join(out, "lesion_core.nii.gz"))
    print(f"{name} in the Philips T1: CSF level {csf_level:.0f}, {int((w > 0.5).sum())} voxels > 50 % cavity, "
          f"core {int(core.sum())} voxels")


def main():
    a = sys.argv[1:]
    if len(a) >= 4 and a[0] == "make":
        make(a[1], a[2], a[3], a[4:])
    elif len(a) in (3, 4) and a[0] == "eval":
        evaluate(*a[1:])
    elif len(a) == 5 and a[0] == "real-lesion":
        real_lesion(*a[1:])
    elif len(a) == 3 and a[0] == "lesion":
        lesion(*a[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
