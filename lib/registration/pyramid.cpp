#include "pyramid.hpp"

#include <algorithm>
#include <cmath>

#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::registration_detail {

Image downsample(const Image& image, double spacing_mm, double sigma_mm) {
  const Image smooth = sigma_mm > 0.0 ? gaussian_smooth(image, sigma_mm) : image;
  const Eigen::Vector3d h = image.grid.spacing_mm();
  Grid g;
  Eigen::Matrix4d scale = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    const double step_vox = std::max(1.0, spacing_mm / h[a]);  // in input voxels
    const double extent_vox = double(image.grid.dim[a] - 1);
    g.dim[a] = static_cast<std::int64_t>(std::floor(extent_vox / step_vox)) + 1;
    scale(a, a) = step_vox;
    scale(a, 3) = 0.5 * (extent_vox - double(g.dim[a] - 1) * step_vox);  // centre the new grid
  }
  g.vox2ras = RasMatrix(image.grid.vox2ras.m * scale);
  return resample_affine(smooth, g, Eigen::Matrix4d::Identity(), Interp::Linear, 0.0f);
}

std::vector<float> strided_values(const Image& image, std::size_t stride) {
  std::vector<float> out;
  out.reserve(image.data.size() / std::max<std::size_t>(1, stride) + 1);
  for (std::size_t i = 0; i < image.data.size(); i += std::max<std::size_t>(1, stride)) out.push_back(image.data[i]);
  return out;
}

}  // namespace tmsplan::registration_detail
