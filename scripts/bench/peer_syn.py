#!/usr/bin/python3
"""Peer for cortex-map's registration: dipy affine + SyN of the brain-extracted subject T1 to the
template brain our cortex-map fits (Colin27 ch2bet, /usr/share/mricron/templates).

usage: peer_syn.py T1 BRAIN_MASK OUTDIR [--syn-iters 10,10,5] [--affine-iters 1000,100,10]
  --affine-iters: iterations per level, shrink factors 4, 2, 1 in that order (1000,100 stops at 2)

dipy 1.6, as its registration tutorial: centre of mass -> translation -> rigid -> affine
(MutualInformationMetric, 32 bins, dense unless --affine-sampling, sigmas 3/1/0, factors 4/2/1), then
SymmetricDiffeomorphicRegistration with CCMetric(3) (SyN levels reduced from dipy's [100,100,25]).
Static: ch2bet; moving: T1 x mask (> 0.5), both brain-only, as cortexmap_eval.py's peer.

Writes, on the template grid, where each template voxel lands in the subject (world RAS mm, float32,
x y z 3) -- the same kind of map as our to_mni_* files -- for the affine stage alone and for the whole
registration: OUTDIR/mni_to_subject_affine.nii, OUTDIR/mni_to_subject.nii (uncompressed: the writing
is counted in the wall time) (dipy's own resampling
of the subject's world coordinate images, linear, which is exact for a linear function; NaN where a
template voxel falls outside the subject grid). Evaluate with
scripts/bench/reg_eval.py. Prints the seconds of each stage.
"""
import argparse
import os
import time

import nibabel as nib
import numpy as np

TEMPLATES = "/usr/share/mricron/templates"

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("t1")
ap.add_argument("mask")
ap.add_argument("out")
ap.add_argument("--syn-iters", default="10,10,5")
ap.add_argument("--affine-iters", default="1000,100,10")
ap.add_argument("--affine-sampling", type=float, default=None,
                help="MI sampling proportion (dipy: None = dense; < 1 = regular grid with random jitter, seeded)")
a = ap.parse_args()
t_start = time.time()
from dipy.align.imaffine import (AffineMap, AffineRegistration, MutualInformationMetric,  # noqa: E402
                                 transform_centers_of_mass)
from dipy.align.imwarp import SymmetricDiffeomorphicRegistration  # noqa: E402
from dipy.align.metrics import CCMetric  # noqa: E402
from dipy.align.transforms import AffineTransform3D, RigidTransform3D, TranslationTransform3D  # noqa: E402

os.makedirs(a.out, exist_ok=True)
static_img = nib.load(os.path.join(TEMPLATES, "ch2bet.nii.gz"))
static = np.asarray(static_img.dataobj, dtype=np.float64)
moving_img = nib.load(a.t1)
brain = np.asarray(nib.load(a.mask).dataobj) > 0.5
moving = np.asarray(moving_img.dataobj, dtype=np.float64) * brain
t0 = time.time()
start = transform_centers_of_mass(static, static_img.affine, moving, moving_img.affine).affine
affine_iters = [int(v) for v in a.affine_iters.split(",")]  # levels 4, 2, 1 (voxels), as many as given
np.random.seed(1)  # the jitter of sparse MI sampling
reg = AffineRegistration(metric=MutualInformationMetric(32, a.affine_sampling), level_iters=affine_iters,
                         sigmas=[3.0, 1.0, 0.0][:len(affine_iters)], factors=[4, 2, 1][:len(affine_iters)], verbosity=0)
stage_s = []
for tf in (TranslationTransform3D(), RigidTransform3D(), AffineTransform3D()):
    start = reg.optimize(static, moving, tf, None, static_img.affine, moving_img.affine,
                         starting_affine=start).affine
    stage_s.append(time.time() - t0 - sum(stage_s))
    print(f"affine stage {type(tf).__name__}: {stage_s[-1]:.1f} s", flush=True)
t_affine = time.time() - t0
t0 = time.time()
sdr = SymmetricDiffeomorphicRegistration(CCMetric(3), level_iters=[int(v) for v in a.syn_iters.split(",")])
mapping = sdr.optimize(static, moving, static_img.affine, moving_img.affine, start)
t_syn = time.time() - t0

# Subject world coordinates of every template voxel, affine only and affine + SyN.
t0 = time.time()
ijk = np.indices(moving.shape, dtype=np.float64).reshape(3, -1)
world = moving_img.affine[:3, :3] @ ijk + moving_img.affine[:3, 3:4]
del ijk
aff_only = AffineMap(start, static.shape, static_img.affine, moving.shape, moving_img.affine)
for name, tr in (("mni_to_subject_affine", aff_only.transform), ("mni_to_subject", mapping.transform)):
    coords = np.stack([np.asarray(tr(world[c].reshape(moving.shape), interpolation="linear"), np.float32)
                       for c in range(3)], axis=-1)
    # Beyond the subject grid dipy's resampling gives 0, which would read as the point (0,0,0): NaN there.
    coords[np.asarray(tr(np.ones(moving.shape), interpolation="linear")) < 0.999] = np.nan
    nib.save(nib.Nifti1Image(coords, static_img.affine), os.path.join(a.out, name + ".nii"))
print(f"seconds affine {t_affine:.1f} syn {t_syn:.1f} write {time.time() - t0:.1f} total {time.time() - t_start:.1f}; "
      f"affine levels {a.affine_iters} sampling {a.affine_sampling or 'dense'} syn levels {a.syn_iters}")
