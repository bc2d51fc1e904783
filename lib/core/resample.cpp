#include "tmsplan/resample.hpp"

#include <cmath>
#include <vector>

#include "tmsplan/parallel.hpp"

namespace tmsplan {

float sample(const Image& image, const Eigen::Vector3d& ijk, Interp interp, float outside) {
  const auto& d = image.grid.dim;
  if (interp == Interp::Nearest) {
    const auto i = static_cast<std::int64_t>(std::lround(ijk[0]));
    const auto j = static_cast<std::int64_t>(std::lround(ijk[1]));
    const auto k = static_cast<std::int64_t>(std::lround(ijk[2]));
    return image.grid.inside(i, j, k) ? image(i, j, k) : outside;
  }
  const Trilinear t = trilinear_stencil(d, ijk[0], ijk[1], ijk[2], Edge::Zero);
  return t.inside ? static_cast<float>(trilinear_value(image.data.data(), t)) : outside;
}

Image resample(const Image& src, const Grid& grid, const WorldMap& target_to_source, Interp interp, float outside) {
  Image out(grid, outside);
  const Eigen::Matrix4d src_ras2vox = src.grid.vox2ras.m.inverse();
  parallel_for(grid.dim[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < grid.dim[1]; ++j)
        for (std::int64_t i = 0; i < grid.dim[0]; ++i) {
          const Eigen::Vector3d q = grid.ras(i, j, k).v;
          const Eigen::Vector3d p = target_to_source(q);
          const Eigen::Vector3d ijk = src_ras2vox.topLeftCorner<3, 3>() * p + src_ras2vox.topRightCorner<3, 1>();
          out(i, j, k) = sample(src, ijk, interp, outside);
        }
  });
  return out;
}

namespace {

// An axis-aligned voxel map (each target axis reads the same source axis; the off-diagonal terms
// exactly 0, as between a grid and its working grid): the sampler factors into one stencil per
// axis. Each axis's source coordinate is the same matrix product as the general loop's with the
// other two indices 0 (their terms are signed zeros either way), its stencil trilinear_stencil's
// on that axis alone, and the interpolation runs in trilinear_value's order (x, then y, then z,
// in double): the same bits as sample() at every voxel, without a matrix product and a stencil
// per voxel.
bool axis_aligned(const Eigen::Matrix4d& m) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      if (r != c && m(r, c) != 0.0) return false;
  return true;
}

struct AxisTaps {
  std::vector<char> inside;
  std::vector<std::size_t> lo, hi;  // source indices along the axis (hi = lo at the last voxel)
  std::vector<double> f;            // fraction towards hi
};

AxisTaps axis_taps(const Eigen::Matrix4d& m, int axis, std::int64_t n_out, std::int64_t n_src, Interp interp) {
  AxisTaps t;
  t.inside.resize(std::size_t(n_out));
  t.lo.resize(std::size_t(n_out));
  t.hi.resize(std::size_t(n_out));
  t.f.resize(std::size_t(n_out));
  for (std::int64_t o = 0; o < n_out; ++o) {
    Eigen::Vector3d v = Eigen::Vector3d::Zero();
    v[axis] = double(o);
    const double c = (m.topLeftCorner<3, 3>() * v + m.topRightCorner<3, 1>())[axis];
    const std::size_t u = std::size_t(o);
    if (interp == Interp::Nearest) {
      const auto i = static_cast<std::int64_t>(std::lround(c));
      t.inside[u] = i >= 0 && i < n_src;
      t.lo[u] = t.hi[u] = t.inside[u] ? std::size_t(i) : 0;
      continue;
    }
    const Trilinear s = trilinear_stencil({n_src, 1, 1}, c, 0.0, 0.0, Edge::Zero);
    t.inside[u] = s.inside;
    t.lo[u] = s.base;
    t.hi[u] = s.base + s.step[0];
    t.f[u] = s.f[0];
  }
  return t;
}

// resample_affine for an axis-aligned map.
// `out` holds the outside value already.
void resample_separable(const Image& src, const Eigen::Matrix4d& m, Interp interp, Image& out) {
  const Grid& grid = out.grid;
  const auto& sd = src.grid.dim;
  const AxisTaps tx = axis_taps(m, 0, grid.dim[0], sd[0], interp), ty = axis_taps(m, 1, grid.dim[1], sd[1], interp),
                 tz = axis_taps(m, 2, grid.dim[2], sd[2], interp);
  const std::size_t nx = std::size_t(grid.dim[0]), sny = std::size_t(sd[1]);
  parallel_for(grid.dim[2], [&](std::int64_t k0, std::int64_t k1) {
    // Rows of the two source slices interpolated along x, made when first needed for a slice.
    std::vector<double> rows(2 * sny * nx);
    std::vector<std::size_t> made(2 * sny);
    std::size_t stamp = 0;
    auto row = [&](int side, std::size_t y, std::size_t z) -> const double* {
      const std::size_t r = std::size_t(side) * sny + y;
      double* x = &rows[r * nx];
      if (made[r] == stamp) return x;
      made[r] = stamp;
      const float* p = &src.data[src.grid.index(0, std::int64_t(y), std::int64_t(z))];
      for (std::size_t i = 0; i < nx; ++i)
        if (tx.inside[i]) x[i] = p[tx.lo[i]] * (1 - tx.f[i]) + p[tx.hi[i]] * tx.f[i];
      return x;
    };
    for (std::int64_t k = k0; k < k1; ++k) {
      const std::size_t uk = std::size_t(k);
      if (!tz.inside[uk]) continue;
      ++stamp;
      for (std::int64_t j = 0; j < grid.dim[1]; ++j) {
        const std::size_t uj = std::size_t(j);
        if (!ty.inside[uj]) continue;
        float* o = &out.data[grid.index(0, j, k)];
        if (interp == Interp::Nearest) {
          const float* p = &src.data[src.grid.index(0, std::int64_t(ty.lo[uj]), std::int64_t(tz.lo[uk]))];
          for (std::size_t i = 0; i < nx; ++i)
            if (tx.inside[i]) o[i] = p[tx.lo[i]];
          continue;
        }
        const double *c00 = row(0, ty.lo[uj], tz.lo[uk]), *c10 = row(0, ty.hi[uj], tz.lo[uk]);
        const double *c01 = row(1, ty.lo[uj], tz.hi[uk]), *c11 = row(1, ty.hi[uj], tz.hi[uk]);
        const double fy = ty.f[uj], fz = tz.f[uk];
        for (std::size_t i = 0; i < nx; ++i) {
          if (!tx.inside[i]) continue;
          const double c0 = c00[i] * (1 - fy) + c10[i] * fy;
          const double c1 = c01[i] * (1 - fy) + c11[i] * fy;
          o[i] = static_cast<float>(c0 * (1 - fz) + c1 * fz);
        }
      }
    }
  });
}

}  // namespace

Image resample_affine(const Image& src, const Grid& grid, const Eigen::Matrix4d& target_to_source, Interp interp,
                      float outside) {
  Image out(grid, outside);
  // voxel of target -> voxel of source in one matrix.
  const Eigen::Matrix4d m = src.grid.vox2ras.m.inverse() * target_to_source * grid.vox2ras.m;
  if (axis_aligned(m)) {
    resample_separable(src, m, interp, out);
    return out;
  }
  parallel_for(grid.dim[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < grid.dim[1]; ++j)
        for (std::int64_t i = 0; i < grid.dim[0]; ++i) {
          const Eigen::Vector3d ijk =
              m.topLeftCorner<3, 3>() * Eigen::Vector3d(double(i), double(j), double(k)) + m.topRightCorner<3, 1>();
          out(i, j, k) = sample(src, ijk, interp, outside);
        }
  });
  return out;
}

namespace {
// body(begin, end) over [0, n): on the threads for volumes of input-grid size (each element is
// written by one call), in one piece for small ones (a thread costs more than it saves there).
void for_elements(std::size_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n < (std::size_t(1) << 21)) {
    body(0, std::int64_t(n));
    return;
  }
  parallel_for(std::int64_t(n), body);
}
}  // namespace

Image to_image(const Mask& mask) {
  Image out(mask.grid, 0.0f);
  for_elements(mask.data.size(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) out.data[std::size_t(i)] = mask.data[std::size_t(i)];
  });
  return out;
}

Mask threshold(const Image& image, float above) {
  Mask out(image.grid, 0);
  for_elements(image.data.size(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) out.data[std::size_t(i)] = image.data[std::size_t(i)] > above ? 1 : 0;
  });
  return out;
}

Mask resample_mask(const Mask& src, const Grid& grid, const WorldMap& target_to_source) {
  return threshold(resample(to_image(src), grid, target_to_source, Interp::Linear), 0.5f);
}

}  // namespace tmsplan
