#!/usr/bin/python3
"""Peer for segment: dipy's TissueClassifierHMRF (dipy.segment.tissue), 3 classes, beta 0.1,
at most 20 iterations (the dipy tutorial's beta; dipy's default of 100 iterations only slows it).

usage: peer_hmrf.py T1 MASK OUTDIR [MAX_ITER] [BETA]

The input is what our segment reads: T1 (skull-strip's t1w_biascorr) masked by MASK (> 0.5), cropped
to the mask's bounding box, as scripts/bench/segment_eval.py's `dipy` command does. Writes our output names
into OUTDIR, so the evaluation is the one our segment row gets (segment_eval.py dice-fast):
dseg.nii.gz (1 CSF, 2 GM, 3 WM inside the mask) and probseg_{csf,gm,wm}.nii.gz (dipy's PVE maps;
its class 0 also holds the zero background inside the box). Prints the classifier's own seconds.
"""
import os
import sys
import time

import nibabel as nib
import numpy as np
from dipy.segment.tissue import TissueClassifierHMRF

if len(sys.argv) not in (4, 5, 6):
    sys.exit(__doc__)
t1_path, mask_path, out = sys.argv[1:4]
max_iter = int(sys.argv[4]) if len(sys.argv) > 4 else 20
beta = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
os.makedirs(out, exist_ok=True)
t1_img = nib.load(t1_path)
t1 = np.asanyarray(t1_img.dataobj).astype(np.float64)
mask = np.asanyarray(nib.load(mask_path).dataobj) > 0.5
box = tuple(slice(a.min(), a.max() + 1) for a in np.nonzero(mask))
img = np.where(mask, t1, 0.0)[box]
start = time.time()
_, final, pve = TissueClassifierHMRF(verbose=False).classify(img, 3, beta, max_iter=max_iter)
seconds = time.time() - start
inside = mask[box]
dseg = np.zeros(mask.shape, np.uint8)
dseg[box] = np.where(inside, np.argmax(pve, axis=-1) + 1, 0).astype(np.uint8)
nib.save(nib.Nifti1Image(dseg, t1_img.affine), os.path.join(out, "dseg.nii.gz"))
for k, name in enumerate(("csf", "gm", "wm")):
    p = np.zeros(mask.shape, np.float32)
    p[box] = np.where(inside, pve[..., k], 0.0)
    nib.save(nib.Nifti1Image(p, t1_img.affine), os.path.join(out, f"probseg_{name}.nii.gz"))
print(f"seconds {seconds:.1f} beta {beta} max_iter {max_iter}")
