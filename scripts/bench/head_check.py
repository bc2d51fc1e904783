#!/usr/bin/python3
"""Head-mask boundary check against an independent threshold-and-fill of the same T1.

The independent head: a plain threshold at a fraction (default 15%) of the 99.5th percentile,
largest connected component, scipy's binary_fill_holes in 3D and on every axial, coronal and
sagittal slice (cavities open to the airways). Prints the mean and 95th percentile distance (mm)
from our mask's outer boundary voxels to the independent outer boundary, and the Dice."""
import sys
import nibabel as nib
import numpy as np
from scipy import ndimage as ndi


def otsu(values, bins=256):
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist); w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    return centres[np.argmax(w0 * w1 * (m0 - m1) ** 2)]


def boundary(mask):
    return mask & ~ndi.binary_erosion(mask)


def fill(mask):
    mask = ndi.binary_fill_holes(mask)
    for axis in range(3):
        for s in range(mask.shape[axis]):
            index = [slice(None)] * 3
            index[axis] = s
            mask[tuple(index)] = ndi.binary_fill_holes(mask[tuple(index)])
    return mask


def main(t1_path, mask_path, fraction=0.15):
    t1 = nib.load(t1_path)
    img = t1.get_fdata(dtype=np.float32)
    ours = nib.load(mask_path).get_fdata() > 0.5
    rough = img > fraction * np.percentile(img, 99.5)
    labels, n = ndi.label(rough)
    sizes = ndi.sum(rough, labels, range(1, n + 1))
    ref = fill(labels == (1 + int(np.argmax(sizes))))
    spacing = np.sqrt((t1.affine[:3, :3] ** 2).sum(0))
    dist_to_ref = ndi.distance_transform_edt(~boundary(ref), sampling=spacing)
    d = dist_to_ref[boundary(fill(ours.copy()))]
    dice = 2 * (ours & ref).sum() / (ours.sum() + ref.sum())
    print(f"head_boundary_mean_mm {d.mean():.3f}")
    print(f"head_boundary_p95_mm {np.percentile(d, 95):.3f}")
    print(f"head_dice_vs_threshold_fill {dice:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.15)
