#!/usr/bin/python3
"""Signed distance (mm) of one brain mask's boundary from another's, on any two grids of one world.

    strip_boundary.py REF_MASK MASK [X,Y,Z RADIUS_MM]

The boundary of MASK is taken at the midpoints of its voxel faces between inside and outside (the
0.5 level of the indicator, not voxel centres, so masks on different grids compare fairly); at each
midpoint REF_MASK's signed distance (negative inside REF_MASK: MASK's boundary lies inside REF's)
is interpolated trilinearly. REF's signed distance is the distance to its face boundary: voxel
centre distance transforms minus half a voxel. Prints the median, the 5th and 95th percentiles and
the mean, each weighted by face area, over the whole boundary, over MASK's faces across each of its
voxel axes (i, j, k: where slice thickness shows), and, with X,Y,Z (world RAS mm) and a radius,
over the faces within that radius of the point."""
import sys
import numpy as np
import nibabel as nib
from scipy import ndimage as ndi


def ras_affine(img):
    # NIfTI world is RAS already (nibabel's affine maps voxel -> RAS+ mm).
    return img.affine


def signed_distance(ref):
    a = np.asarray(ref.dataobj) > 0
    sp = np.sqrt((ref.affine[:3, :3] ** 2).sum(0))
    h = 0.5 * sp.min()
    out = ndi.distance_transform_edt(~a, sampling=sp) - h
    inside = ndi.distance_transform_edt(a, sampling=sp) - h
    return np.where(a, -inside, out)


def face_midpoints(img):
    m = np.asarray(img.dataobj) > 0
    sp = np.sqrt((img.affine[:3, :3] ** 2).sum(0))
    pts, area = [], []
    for ax in range(3):
        a = np.moveaxis(m, ax, 0)
        diff = a[1:] != a[:-1]
        idx = np.argwhere(diff).astype(float)
        idx[:, 0] += 0.5  # between voxel i and i+1 along ax
        idx = np.moveaxis(idx.T, 0, 0)  # rows: moved axes
        order = list(range(3))
        order.remove(ax)
        vox = np.empty_like(idx)
        vox[ax] = idx[0]
        vox[order[0]] = idx[1]
        vox[order[1]] = idx[2]
        pts.append(vox)
        area.append(np.full(vox.shape[1], np.prod(np.delete(sp, ax))))
    vox = np.concatenate(pts, axis=1)
    world = img.affine[:3, :3] @ vox + img.affine[:3, 3:4]
    axis = np.concatenate([np.full(p.shape[1], ax) for ax, p in enumerate(pts)])
    return world, np.concatenate(area), axis


def wquantile(x, w, q):
    o = np.argsort(x)
    c = np.cumsum(w[o]) / w.sum()
    return float(np.interp(q, c, x[o]))


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    ref, img = nib.load(sys.argv[1]), nib.load(sys.argv[2])
    sd = signed_distance(ref)
    world, area, axis = face_midpoints(img)
    vox = np.linalg.inv(ref.affine) @ np.vstack([world, np.ones(world.shape[1])])
    d = ndi.map_coordinates(sd, vox[:3], order=1, mode="nearest")
    sets = [("all", np.ones(d.size, bool))]
    sets += [(f"faces_across_{'ijk'[a]}", axis == a) for a in range(3)]
    if len(sys.argv) == 5:
        p = np.array([float(v) for v in sys.argv[3].split(",")])
        sets.append((f"within_{sys.argv[4]}mm", np.linalg.norm(world.T - p, axis=1) <= float(sys.argv[4])))
    for name, s in sets:
        x, w = d[s], area[s]
        print(f"{name} median {wquantile(x, w, 0.5):+.3f} p5 {wquantile(x, w, 0.05):+.3f} "
              f"p95 {wquantile(x, w, 0.95):+.3f} mean {np.average(x, weights=w):+.3f} mm (faces {s.sum()})")


if __name__ == "__main__":
    main()
