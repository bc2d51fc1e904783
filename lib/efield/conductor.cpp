// The conductor surface of a head, from the brain mask (docs/efield.md, "The conductor").
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::efield {

Mesh conductor_surface(const Mask& brain, const ConductorOptions& o) {
  // 1. The mask on a 2 mm grid aligned with the input's axes (enough for a surface of ~5 mm
  //    triangles), as a fraction.
  Eigen::Vector3d lo(1e9, 1e9, 1e9), hi(-1e9, -1e9, -1e9), sum(0, 0, 0);
  std::size_t count = 0;
  for (std::int64_t k = 0; k < brain.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < brain.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < brain.grid.dim[0]; ++i)
        if (brain(i, j, k)) {
          const Eigen::Vector3d p{double(i), double(j), double(k)};
          lo = lo.cwiseMin(p);
          hi = hi.cwiseMax(p);
          sum += brain.grid.ras(i, j, k).v;
          ++count;
        }
  if (count < 1000)
    throw Error(fmt::format("the brain mask is empty or tiny ({} voxels): no conductor surface", count));
  const Eigen::Vector3d centre = sum / double(count);
  const Eigen::Vector3d sp = brain.grid.spacing_mm();
  const double target = 2.0;
  const double margin_mm = o.closing_radius_mm + 3 * o.smoothing_mm + std::max(0.0, o.offset_mm) + 6.0;
  Grid g;
  Eigen::Matrix4d v2r = brain.grid.vox2ras.m;
  Eigen::Vector3d step;
  for (int a = 0; a < 3; ++a) {
    step[a] = std::max(1.0, std::round(target / sp[a]));
    const double pad = std::ceil(margin_mm / sp[a]);
    lo[a] -= pad;
    hi[a] += pad;
    g.dim[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(std::floor((hi[a] - lo[a]) / step[a])) + 1;
  }
  Eigen::Matrix4d sub = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    sub(a, a) = step[a];
    sub(a, 3) = lo[a];
  }
  g.vox2ras = RasMatrix(v2r * sub);
  const Image frac = resample(
      to_image(brain), g, [](const Eigen::Vector3d& q) { return q; }, Interp::Linear, 0.0f);
  // 2. Closed (sulci and the outer CSF inside), holes filled, smoothed.
  Mask m = threshold(frac, 0.5f);
  m = fill_holes(close(largest_component(m), o.closing_radius_mm));
  const Image smooth = gaussian_smooth(to_image(m), o.smoothing_mm);
  const Eigen::Matrix4d r2v = g.vox2ras.m.inverse();
  auto value = [&](const Eigen::Vector3d& p) {
    const Eigen::Vector3d ijk = (r2v * p.homogeneous()).head<3>();
    return sample(smooth, ijk, Interp::Linear, 0.0f);
  };
  // 3. Rays from the centre through the vertices of a geodesic sphere: the outermost 0.5 crossing.
  Mesh mesh = geodesic_sphere(o.frequency, Eigen::Vector3d::Zero(), Eigen::Vector3d(1, 1, 1));
  const std::size_t nv = mesh.vertices.size();
  std::vector<double> radius(nv, 0.0);
  const double rmax = 150.0, dr = 0.25;
  parallel_for(static_cast<std::int64_t>(nv), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t v = b; v < e; ++v) {
      const Eigen::Vector3d u = mesh.vertices[static_cast<std::size_t>(v)];
      double prev = value(centre + rmax * u), r_hit = -1;
      for (double r = rmax - dr; r >= 0; r -= dr) {
        const double cur = value(centre + r * u);
        if (cur >= 0.5 && prev < 0.5) {
          r_hit = r + dr * (cur - 0.5) / (cur - prev);
          break;
        }
        prev = cur;
      }
      radius[static_cast<std::size_t>(v)] = r_hit;
    }
  });
  for (double r : radius)
    if (r <= 5) throw Error("the brain mask is not star-shaped around its centre or too small: no conductor surface");
  // 4. A little smoothing of the radius over neighbouring vertices (keeps the surface a graph over
  //    the sphere, so it cannot fold), then the offset.
  std::vector<std::set<int>> nb(nv);
  for (const auto& t : mesh.triangles)
    for (int a = 0; a < 3; ++a) {
      nb[static_cast<std::size_t>(t[static_cast<std::size_t>(a)])].insert(t[static_cast<std::size_t>((a + 1) % 3)]);
      nb[static_cast<std::size_t>(t[static_cast<std::size_t>(a)])].insert(t[static_cast<std::size_t>((a + 2) % 3)]);
    }
  for (int it = 0; it < 2; ++it) {
    std::vector<double> next(nv);
    for (std::size_t v = 0; v < nv; ++v) {
      double s = 0;
      for (int w : nb[v]) s += radius[static_cast<std::size_t>(w)];
      next[v] = 0.5 * radius[v] + 0.5 * s / double(nb[v].size());
    }
    radius.swap(next);
  }
  for (std::size_t v = 0; v < nv; ++v) mesh.vertices[v] = centre + (radius[v] + o.offset_mm) * mesh.vertices[v];
  return mesh;
}

}  // namespace tmsplan::efield
