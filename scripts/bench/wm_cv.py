#!/usr/bin/python3
"""Bias-correction figure: coefficient of variation (sd / mean) of an image's intensities inside the
reference white matter (FSL FAST pve_wm > 0.5; smaller = flatter field). Prints the value for each image.

usage: wm_cv.py PVE_WM IMAGE [IMAGE ...]   (all on one grid)
"""
import sys

import nibabel as nib
import numpy as np

if len(sys.argv) < 3:
    sys.exit(__doc__)
wm = np.asanyarray(nib.load(sys.argv[1]).dataobj) > 0.5
print(" ".join(f"{np.std(v) / np.mean(v):.4f}" for v in
               (np.asanyarray(nib.load(p).dataobj)[wm].astype(np.float64) for p in sys.argv[2:])))
