#!/usr/bin/python3
"""Helpers to turn an external tool's image warping into a point map for reg_eval.py.

  coord_images.py split IMAGE PREFIX      writes PREFIX{x,y,z}.nii.gz: IMAGE's world RAS mm per voxel
                                        (float32), and PREFIXone.nii.gz (all 1)
  coord_images.py stack X Y Z OUT [ONE] stacks three warped coordinate images into OUT (x y z 3); with
                                        the warped ONE image, NaN where it is < 0.999 (off the subject
                                        grid resamplers give 0, which would read as the point 0,0,0)
  coord_images.py mask T1 MASK OUT      T1 x (MASK > 0.5), float32: the brain-extracted input for peers

Warping the coordinate images from the subject grid onto the template grid with linear interpolation
(e.g. antsApplyTransforms -r template) gives, at each template voxel, where it lands in the subject:
exact for a linear function, whatever the transform.
"""
import sys

import nibabel as nib
import numpy as np

cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
if cmd == "split" and len(args) == 2:
    img = nib.load(args[0])
    ijk = np.indices(img.shape[:3], dtype=np.float64)
    for c, name in enumerate("xyz"):
        w = sum(img.affine[c, k] * ijk[k] for k in range(3)) + img.affine[c, 3]
        nib.save(nib.Nifti1Image(w.astype(np.float32), img.affine), f"{args[1]}{name}.nii.gz")
    nib.save(nib.Nifti1Image(np.ones(img.shape[:3], np.float32), img.affine), f"{args[1]}one.nii.gz")
elif cmd == "stack" and len(args) in (4, 5):
    imgs = [nib.load(p) for p in args[:3]]
    data = np.stack([np.asarray(i.dataobj, dtype=np.float32) for i in imgs], axis=-1)
    if len(args) == 5:
        data[np.asarray(nib.load(args[4]).dataobj) < 0.999] = np.nan
    nib.save(nib.Nifti1Image(data, imgs[0].affine), args[3])
elif cmd == "mask" and len(args) == 3:
    img = nib.load(args[0])
    m = np.asanyarray(nib.load(args[1]).dataobj) > 0.5
    nib.save(nib.Nifti1Image(np.where(m, np.asarray(img.dataobj, dtype=np.float32), 0.0).astype(np.float32),
                             img.affine), args[2])
else:
    sys.exit(__doc__)
