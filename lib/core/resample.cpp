#include "tmsplan/resample.hpp"

#include <cmath>

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

Image resample_affine(const Image& src, const Grid& grid, const Eigen::Matrix4d& target_to_source, Interp interp,
                      float outside) {
  Image out(grid, outside);
  // voxel of target -> voxel of source in one matrix.
  const Eigen::Matrix4d m = src.grid.vox2ras.m.inverse() * target_to_source * grid.vox2ras.m;
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

Image to_image(const Mask& mask) {
  Image out(mask.grid, 0.0f);
  for (std::size_t i = 0; i < mask.data.size(); ++i) out.data[i] = mask.data[i];
  return out;
}

Mask threshold(const Image& image, float above) {
  Mask out(image.grid, 0);
  for (std::size_t i = 0; i < image.data.size(); ++i) out.data[i] = image.data[i] > above ? 1 : 0;
  return out;
}

Mask resample_mask(const Mask& src, const Grid& grid, const WorldMap& target_to_source) {
  return threshold(resample(to_image(src), grid, target_to_source, Interp::Linear), 0.5f);
}

}  // namespace tmsplan
