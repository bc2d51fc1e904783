#pragma once
/// Sampling and resampling between grids in world RAS. The one trilinear sampler of the library
/// (trilinear_stencil + trilinear_value, with the gradient where needed): sample(), the
/// registration's images and displacement fields all go through it.
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>

#include "tmsplan/image.hpp"

namespace tmsplan {

enum class Interp { Nearest, Linear };

/// What trilinear sampling does beyond the grid. Zero: no value (the caller's `outside`) beyond
/// half a voxel of the border, the edge value within it. Clamp: the edge value continues
/// everywhere (a displacement field continues at its border).
enum class Edge { Zero, Clamp };

/// The eight-voxel stencil of trilinear interpolation at a fractional voxel position.
struct Trilinear {
  bool inside = false;                ///< false: beyond the grid (Edge::Zero only)
  std::size_t base = 0;               ///< storage index of the lower corner
  std::array<std::size_t, 3> step{};  ///< storage step to the upper corner per axis (0 at the last voxel)
  std::array<double, 3> f{};          ///< fraction towards the upper corner per axis
};

inline Trilinear trilinear_stencil(const std::array<std::int64_t, 3>& dim, double x, double y, double z, Edge edge) {
  Trilinear t;
  const double v[3] = {x, y, z};
  if (edge == Edge::Zero)
    for (int a = 0; a < 3; ++a)
      if (!(v[a] >= -0.5 && v[a] <= double(dim[a]) - 0.5)) return t;
  std::size_t stride = 1;
  for (int a = 0; a < 3; ++a) {
    const double c = std::clamp(v[a], 0.0, double(dim[a] - 1));
    const auto i0 = std::min<std::int64_t>(static_cast<std::int64_t>(c), dim[a] - 1);
    t.f[a] = c - double(i0);
    t.step[a] = i0 + 1 < dim[a] ? stride : 0;
    t.base += std::size_t(i0) * stride;
    stride *= std::size_t(dim[a]);
  }
  t.inside = true;
  return t;
}

/// The interpolated value of `data` (storage order of the stencil's grid); 0 when not inside.
/// With `grad`: also the gradient in voxel units (0 along an axis at its last voxel).
inline double trilinear_value(const float* data, const Trilinear& t, double* grad = nullptr) {
  if (!t.inside) {
    if (grad) grad[0] = grad[1] = grad[2] = 0.0;
    return 0.0;
  }
  const float* p = data + t.base;
  const std::size_t sx = t.step[0], sy = t.step[1], sz = t.step[2];
  const double fx = t.f[0], fy = t.f[1], fz = t.f[2];
  const double c00 = p[0] * (1 - fx) + p[sx] * fx;
  const double c10 = p[sy] * (1 - fx) + p[sy + sx] * fx;
  const double c01 = p[sz] * (1 - fx) + p[sz + sx] * fx;
  const double c11 = p[sy + sz] * (1 - fx) + p[sy + sz + sx] * fx;
  const double c0 = c00 * (1 - fy) + c10 * fy;
  const double c1 = c01 * (1 - fy) + c11 * fy;
  if (grad) {
    const double dx0 = double(p[sx] - p[0]) * (1 - fy) + double(p[sy + sx] - p[sy]) * fy;
    const double dx1 = double(p[sz + sx] - p[sz]) * (1 - fy) + double(p[sy + sz + sx] - p[sy + sz]) * fy;
    grad[0] = sx ? dx0 * (1 - fz) + dx1 * fz : 0.0;
    grad[1] = sy ? (c10 - c00) * (1 - fz) + (c11 - c01) * fz : 0.0;
    grad[2] = sz ? c1 - c0 : 0.0;
  }
  return c0 * (1 - fz) + c1 * fz;
}

/// Value at a fractional voxel index; `outside` beyond the grid (linear uses edge clamping within
/// half a voxel of the border).
float sample(const Image& image, const Eigen::Vector3d& ijk, Interp interp, float outside = 0.0f);

/// For each voxel of `grid` at world point q, takes src at world point map(q).
using WorldMap = std::function<Eigen::Vector3d(const Eigen::Vector3d&)>;
Image resample(const Image& src, const Grid& grid, const WorldMap& target_to_source, Interp interp,
               float outside = 0.0f);
/// The same with an affine map given as a 4x4 RAS->RAS matrix.
Image resample_affine(const Image& src, const Grid& grid, const Eigen::Matrix4d& target_to_source, Interp interp,
                      float outside = 0.0f);
Mask resample_mask(const Mask& src, const Grid& grid, const WorldMap& target_to_source);

/// Converts between mask and float image.
Image to_image(const Mask& mask);
Mask threshold(const Image& image, float above);

}  // namespace tmsplan
