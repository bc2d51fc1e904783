#!/usr/bin/python3
"""Peer: dipy's median_otsu brain extraction on a T1; writes the mask (NIfTI) and prints seconds."""
import sys
import time
import nibabel as nib
import numpy as np
from dipy.segment.mask import median_otsu

t1 = nib.load(sys.argv[1])
data = t1.get_fdata(dtype=np.float32)
start = time.time()
_, mask = median_otsu(data, median_radius=4, numpass=4)
print(f"seconds {time.time() - start:.2f}")
nib.save(nib.Nifti1Image(mask.astype(np.uint8), t1.affine), sys.argv[2])
