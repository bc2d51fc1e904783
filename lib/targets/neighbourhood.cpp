#include "neighbourhood.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tmsplan/filters.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::targets {
namespace {

constexpr double kHullRadiusMm = 12.0;  // the brain's outer hull: closing with a 12 mm ball (as cortex-map's map)
constexpr double kHullMarginMm = 2.0 * kHullRadiusMm + 4.0;  // the closing at a point sees 2 radii around it
constexpr double kDepthStepMm = 1.0;                         // the hull's grid
constexpr double kRayStepMm = 0.1;                           // onto_cortex: samples along the line ...
constexpr double kRayReachMm = 2.0;                          // ... up to 2 mm either side
constexpr double kInsetMm = 0.5;                             // ... and kept 0.5 mm inside the run

Eigen::Vector3d to_voxel(const Eigen::Matrix4d& ras2vox, const Eigen::Vector3d& p) {
  return ras2vox.topLeftCorner<3, 3>() * p + ras2vox.topRightCorner<3, 1>();
}

// The box of `grid` (clipped to it, one voxel of margin) holding the cube of half-size half_mm
// along `axes` around `centre`.
Crop box_around(const Grid& grid, const Eigen::Vector3d& centre, const Eigen::Matrix3d& axes, double half_mm) {
  const Eigen::Matrix4d ras2vox = grid.vox2ras.m.inverse();
  Eigen::Vector3d lo = Eigen::Vector3d::Constant(std::numeric_limits<double>::infinity()), hi = -lo;
  for (int corner = 0; corner < 8; ++corner) {
    const Eigen::Vector3d s((corner & 1) ? 1 : -1, (corner & 2) ? 1 : -1, (corner & 4) ? 1 : -1);
    const Eigen::Vector3d v = to_voxel(ras2vox, centre + axes * (half_mm * s));
    lo = lo.cwiseMin(v);
    hi = hi.cwiseMax(v);
  }
  Crop c;
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    const std::int64_t last = grid.dim[std::size_t(a)] - 1;
    const std::int64_t first = std::clamp<std::int64_t>(std::int64_t(std::floor(lo[a])) - 1, 0, last);
    const std::int64_t end = std::clamp<std::int64_t>(std::int64_t(std::ceil(hi[a])) + 1, 0, last);
    c.offset[std::size_t(a)] = first;
    c.grid.dim[std::size_t(a)] = std::max<std::int64_t>(1, end - first + 1);
    shift(a, 3) = double(first);
  }
  c.grid.vox2ras = RasMatrix(grid.vox2ras.m * shift);
  return c;
}

// `value` of each parent voxel on the crop, as a float field (a predicate gives an indicator: 1
// where it holds, 0 elsewhere).
template <class V, class F> Image crop_field(const V& v, const Crop& c, F value) {
  Image out(c.grid, 0.0f);
  for (std::int64_t k = 0; k < c.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < c.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < c.grid.dim[0]; ++i)
        out(i, j, k) = static_cast<float>(value(v(i + c.offset[0], j + c.offset[1], k + c.offset[2])));
  return out;
}

}  // namespace

Neighbourhood::Neighbourhood(const Subject& s, const Eigen::Vector3d& centre, const Eigen::Matrix3d& axes,
                             double radius_mm, int area)
    : centre_(centre), axes_(axes) {
  // The hull's grid: 1 mm along the anatomical axes, centred on `centre`.
  const double half = radius_mm + kHullMarginMm;
  const std::int64_t n = 2 * std::int64_t(std::ceil(half / kDepthStepMm)) + 1;
  Grid local;
  local.dim = {n, n, n};
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m.topLeftCorner<3, 3>() = axes * kDepthStepMm;
  m.topRightCorner<3, 1>() = centre - axes * Eigen::Vector3d::Constant(0.5 * double(n - 1) * kDepthStepMm);
  local.vox2ras = RasMatrix(m);
  const Crop wide = box_around(s.grid, centre, axes, half + kDepthStepMm);
  const Image brain = resample_affine(crop_field(s.brain, wide, [](std::uint8_t v) { return v != 0; }), local,
                                      Eigen::Matrix4d::Identity(), Interp::Linear, 0.0f);
  const Mask b = threshold(brain, 0.5f);
  depth_ = distance_to(mask_not(fill_holes(mask_or(close(b, kHullRadiusMm), b))));
  depth_ras2vox_ = local.vox2ras.m.inverse();
  // Grey matter and the area: a crop of the subject's grid just beyond the radius.
  const Crop near = box_around(s.grid, centre, axes, radius_mm + 1.0);
  crop_ras2vox_ = near.grid.vox2ras.m.inverse();
  // segment's grey-matter fraction when there is one (its 0.5 level is the sub-voxel boundary; the
  // labels are its argmax on voxel centres and moved the anisotropic copy's DLPFC_BA46 by 2 mm).
  gm_ = s.gm_probability.data.empty() ? crop_field(s.gm, near, [](std::uint8_t v) { return v != 0; })
                                      : crop_field(s.gm_probability, near, [](float v) { return v; });
  has_area_ = area > 0 && !s.brodmann.data.empty();
  if (has_area_) area_ = crop_field(s.brodmann, near, [area](std::uint8_t v) { return int(v) == area; });
}

double Neighbourhood::gm(const Eigen::Vector3d& p) const {
  return sample(gm_, to_voxel(crop_ras2vox_, p), Interp::Linear, 0.0f);
}

double Neighbourhood::area(const Eigen::Vector3d& p) const {
  return has_area_ ? sample(area_, to_voxel(crop_ras2vox_, p), Interp::Linear, 0.0f) : 1.0;
}

double Neighbourhood::depth(const Eigen::Vector3d& p) const {
  return sample(depth_, to_voxel(depth_ras2vox_, p), Interp::Linear, 0.0f);
}

std::vector<Eigen::Vector3d> Neighbourhood::lattice(double radius_mm, double step_mm) const {
  std::vector<Eigen::Vector3d> out;
  const auto n = std::int64_t(std::floor(radius_mm / step_mm));
  for (std::int64_t k = -n; k <= n; ++k)
    for (std::int64_t j = -n; j <= n; ++j)
      for (std::int64_t i = -n; i <= n; ++i) {
        const Eigen::Vector3d q = step_mm * Eigen::Vector3d(double(i), double(j), double(k));
        if (q.norm() <= radius_mm) out.push_back(centre_ + axes_ * q);
      }
  return out;
}

std::optional<Eigen::Vector3d> Neighbourhood::onto_cortex(const Eigen::Vector3d& p,
                                                          const Eigen::Vector3d& outward) const {
  const Eigen::Vector3d u = outward.normalized();
  const auto m = std::int64_t(std::lround(kRayReachMm / kRayStepMm));
  std::vector<double> g(std::size_t(2 * m + 1));
  for (std::int64_t i = -m; i <= m; ++i) g[std::size_t(i + m)] = gm(p + double(i) * kRayStepMm * u);
  auto t_of = [&](std::size_t i) { return double(std::int64_t(i) - m) * kRayStepMm; };
  // The 0.5 crossing between samples i - 1 and i (linear between them).
  auto crossing = [&](std::size_t i) { return t_of(i - 1) + kRayStepMm * (0.5 - g[i - 1]) / (g[i] - g[i - 1]); };
  double best_gap = std::numeric_limits<double>::infinity(), best_t = 0.0;
  double start = g[0] >= 0.5 ? t_of(0) : 0.0;
  for (std::size_t i = 1; i <= g.size(); ++i) {
    const bool was = g[i - 1] >= 0.5, is = i < g.size() && g[i] >= 0.5;
    if (!was && is) start = crossing(i);
    if (!(was && !is)) continue;
    const double end = i < g.size() ? crossing(i) : t_of(i - 1);
    // The run holding p first, then the nearest outward (the weighted points were the superficial
    // grey matter: a mean off the cortex lies under its crown), then the nearest inward.
    const double gap = start > 0.0 ? start : end < 0.0 ? kRayReachMm - end : 0.0;
    if (gap < best_gap) {
      best_gap = gap;
      best_t = end - start > 2.0 * kInsetMm ? std::clamp(0.0, start + kInsetMm, end - kInsetMm) : 0.5 * (start + end);
    }
  }
  if (!std::isfinite(best_gap)) return std::nullopt;
  return p + best_t * u;
}

}  // namespace tmsplan::targets
