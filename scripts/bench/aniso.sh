#!/usr/bin/env bash
# The sub-millimetre anisotropic test scan of issue 16 and the per-step timing of a plan.
#
#   aniso.sh make T1 OUT.nii.gz [SPACING [DIMS]]
#       T1 resampled to an axial scan (default 0.4,0.4,1.5 mm, 512,512,120 voxels; i right->left,
#       j posterior->anterior, k inferior->superior, no obliquity) in the same world: cubic
#       spline in plane, the slice profile a Gaussian of FWHM = slice thickness across slices; the
#       field of view centred on the head in plane, its top 5 mm above the head. int16 with the source's
#       scaling.
#   aniso.sh plan T1 OUTDIR [plan-subject.sh options]
#       scripts/plan-subject.sh with every tool under /usr/bin/time: OUTDIR/steps.tsv holds one
#       line per step (tool, wall s, CPU s = user + sys, peak MiB) and a "total" line.
#   aniso.sh compare A/targets.json B/targets.json
#       per target of both plans (same world): cortical point, scalp entry (mm) and coil z (deg).
# Needs python3-nibabel and python3-scipy (Debian), installed when missing (as root).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
need_python() {
  $PY -c "import nibabel, scipy" 2>/dev/null && return
  [ "$(id -u)" -eq 0 ] || { echo "aniso.sh: error: needs python3-nibabel and python3-scipy" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-nibabel python3-scipy >&2
}

make_scan() {
  need_python
  $PY - "$@" <<'PYEOF'
import sys
import numpy as np, nibabel as nib
from scipy import ndimage
src, out = sys.argv[1], sys.argv[2]
sp = np.array([float(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0.4,0.4,1.5").split(",")])
dim = np.array([int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "512,512,120").split(",")])
im = nib.load(src)
# The source's stored integers and scaling are kept: interpolate the stored values, write the same slope.
slope, inter = getattr(im.dataobj, "slope", 1.0), getattr(im.dataobj, "inter", 0.0)
a = np.asarray(im.dataobj.get_unscaled(), dtype=np.float32)
A = im.affine
# Slice profile: Gaussian of FWHM = slice thickness along the source axis closest to S.
zax = int(np.argmax(np.abs(A[2, :3]) / np.linalg.norm(A[:3, :3], axis=0)))
sigma = [0.0, 0.0, 0.0]
sigma[zax] = sp[2] / 2.3548 / np.linalg.norm(A[:3, zax])
a = ndimage.gaussian_filter(a, sigma, mode="nearest")
coef = ndimage.spline_filter(a, order=3)
# Head bounding box in world (voxels above a tenth of the 99th percentile).
thr = 0.1 * np.percentile(a, 99)
ijk = np.argwhere(a > thr)
w = (A[:3, :3] @ ijk.T).T + A[:3, 3]
lo, hi = w.min(0), w.max(0)
centre = 0.5 * (lo + hi)
# Output grid: i along -x, j along +y, k along +z.
out_aff = np.diag([-sp[0], sp[1], sp[2], 1.0])
first = np.array([centre[0] + 0.5 * (dim[0] - 1) * sp[0], centre[1] - 0.5 * (dim[1] - 1) * sp[1],
                  hi[2] + 5.0 - (dim[2] - 1) * sp[2]])
out_aff[:3, 3] = first
inv = np.linalg.inv(A)
res = np.zeros(tuple(dim), dtype=np.int16)
ii, jj = np.meshgrid(np.arange(dim[0]), np.arange(dim[1]), indexing="ij")
for k in range(dim[2]):
    vox = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k), np.ones(ii.size)])
    s = inv @ (out_aff @ vox)
    v = ndimage.map_coordinates(coef, s[:3], order=3, mode="constant", cval=0.0, prefilter=False)
    res[:, :, k] = np.clip(np.rint(v), 0, 32767).reshape(dim[0], dim[1]).astype(np.int16)
img = nib.Nifti1Image(res, out_aff)
img.set_qform(out_aff, code=1)
img.set_sform(out_aff, code=1)
img.header.set_xyzt_units("mm", "sec")
img.header.set_slope_inter(slope, inter)
nib.save(img, out)
print(f"{out}: {dim[0]}x{dim[1]}x{dim[2]} at {sp[0]}x{sp[1]}x{sp[2]} mm, z {first[2]:.1f}..{first[2] + (dim[2] - 1) * sp[2]:.1f}, head z {lo[2]:.1f}..{hi[2]:.1f}")
PYEOF
}

# plan T1 OUTDIR [options]: the tools wrapped by /usr/bin/time through TMSPLAN_BIN.
plan_timed() {
  local t1=$1 out=$2; shift 2
  local real=${TMSPLAN_BIN:-$here/${BUILD_DIR:-build}/bin} wrap log
  [ -x "$real/skull-strip" ] || { echo "aniso.sh: error: tools not found in $real (set TMSPLAN_BIN)" >&2; exit 1; }
  real=$(cd "$real" && pwd)
  mkdir -p "$out"
  log=$(cd "$out" && pwd)/steps.raw
  wrap=$(mktemp -d)
  : > "$log"
  for t in skull-strip segment cortex-map target-pick efield protocol-export; do
    printf '#!/bin/sh\nexec /usr/bin/time -a -o %s -f "%s %%e %%U %%S %%M" %s/%s "$@"\n' "$log" "$t" "$real" "$t" > "$wrap/$t"
    chmod +x "$wrap/$t"
  done
  TMSPLAN_BIN=$wrap "$here/scripts/plan-subject.sh" "$t1" "$out" "$@"
  rm -rf "$wrap"
  awk '{cpu = $3 + $4; printf "%s\t%.1f\t%.1f\t%.0f\n", $1, $2, cpu, $5 / 1024; w += $2; c += cpu; m = ($5 > m ? $5 : m)}
       END {printf "total\t%.1f\t%.1f\t%.0f\n", w, c, m / 1024}' "$log" > "$out/steps.tsv"
  rm -f "$log"
  cat "$out/steps.tsv"
}

compare_targets() {
  $PY - "$1" "$2" <<'PYEOF'
import json, sys, math
a = {t["name"]: t for t in json.load(open(sys.argv[1]))["targets"]}
b = {t["name"]: t for t in json.load(open(sys.argv[2]))["targets"]}
def d(p, q): return math.dist(p, q)
def z(t): return [t["coil_pose_ras"][r][2] for r in range(3)]
def ang(u, v):
    c = sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))
for n in a:
    if n in b:
        print(f"{n} cortical_mm {d(a[n]['cortical_ras'], b[n]['cortical_ras']):.2f} scalp_mm {d(a[n]['scalp_ras'], b[n]['scalp_ras']):.2f} coil_z_deg {ang(z(a[n]), z(b[n])):.2f}")
PYEOF
}

case ${1:-} in
  make) shift; make_scan "$@" ;;
  plan) shift; plan_timed "$@" ;;
  compare) shift; compare_targets "$@" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
