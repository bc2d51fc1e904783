#include "pyramid.hpp"

#include <algorithm>
#include <cmath>

#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::registration_detail {
namespace {

std::vector<double> gaussian_kernel(double sigma_vox) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3.0 * sigma_vox)));
  std::vector<double> w(static_cast<std::size_t>(2 * radius + 1));
  for (int x = -radius; x <= radius; ++x)
    w[static_cast<std::size_t>(x + radius)] = std::exp(-0.5 * double(x) * double(x) / (sigma_vox * sigma_vox));
  return w;
}

// Convolves every line along `axis` with kernel w (renormalised where it leaves the volume).
Image blur_axis(const Image& in, int axis, const std::vector<double>& w) {
  Image out(in.grid, 0.0f);
  const auto& d = in.grid.dim;
  const int radius = static_cast<int>(w.size() / 2);
  const std::int64_t n = d[axis];
  const std::int64_t stride = axis == 0 ? 1 : axis == 1 ? d[0] : d[0] * d[1];
  // Lines are indexed by the two other axes; parallel over the slowest of them.
  const int outer_axis = axis == 2 ? 1 : 2;
  const int inner_axis = axis == 0 ? 1 : 0;
  parallel_for(d[outer_axis], [&](std::int64_t o0, std::int64_t o1) {
    std::vector<double> line(static_cast<std::size_t>(n));
    for (std::int64_t o = o0; o < o1; ++o)
      for (std::int64_t u = 0; u < d[inner_axis]; ++u) {
        std::array<std::int64_t, 3> ijk{0, 0, 0};
        ijk[static_cast<std::size_t>(outer_axis)] = o;
        ijk[static_cast<std::size_t>(inner_axis)] = u;
        const std::size_t base = in.grid.index(ijk[0], ijk[1], ijk[2]);
        for (std::int64_t x = 0; x < n; ++x)
          line[static_cast<std::size_t>(x)] = in.data[base + std::size_t(x * stride)];
        for (std::int64_t x = 0; x < n; ++x) {
          double sum = 0.0, wsum = 0.0;
          const std::int64_t lo = std::max<std::int64_t>(0, x - radius), hi = std::min<std::int64_t>(n - 1, x + radius);
          for (std::int64_t y = lo; y <= hi; ++y) {
            const double wy = w[static_cast<std::size_t>(y - x + radius)];
            sum += wy * line[static_cast<std::size_t>(y)];
            wsum += wy;
          }
          out.data[base + std::size_t(x * stride)] = static_cast<float>(sum / wsum);
        }
      }
  });
  return out;
}

}  // namespace

Image gaussian_blur_mm(const Image& image, double sigma_mm) {
  Image out = image;
  if (sigma_mm <= 0.0) return out;
  const Eigen::Vector3d h = image.grid.spacing_mm();
  for (int a = 0; a < 3; ++a) {
    const double sigma_vox = sigma_mm / h[a];
    if (sigma_vox < 0.25 || image.grid.dim[a] < 2) continue;
    out = blur_axis(out, a, gaussian_kernel(sigma_vox));
  }
  return out;
}

Image downsample(const Image& image, double spacing_mm, double sigma_mm) {
  const Image smooth = gaussian_blur_mm(image, sigma_mm);
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

float quantile(std::vector<float> values, double q) {
  if (values.empty()) return 0.0f;
  const auto n = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * double(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n), values.end());
  return values[n];
}

std::vector<float> strided_values(const Image& image, std::size_t stride) {
  std::vector<float> out;
  out.reserve(image.data.size() / std::max<std::size_t>(1, stride) + 1);
  for (std::size_t i = 0; i < image.data.size(); i += std::max<std::size_t>(1, stride)) out.push_back(image.data[i]);
  return out;
}

Mask dilate(const Mask& mask, int radius) {
  Mask cur = mask;
  const auto& d = mask.grid.dim;
  for (int axis = 0; axis < 3; ++axis) {
    Mask next(mask.grid, 0);
    const std::int64_t stride = axis == 0 ? 1 : axis == 1 ? d[0] : d[0] * d[1];
    for (std::int64_t k = 0; k < d[2]; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t idx = mask.grid.index(i, j, k);
          if (!cur.data[idx]) continue;
          const std::int64_t pos = axis == 0 ? i : axis == 1 ? j : k;
          const std::int64_t lo = std::max<std::int64_t>(0, pos - radius);
          const std::int64_t hi = std::min<std::int64_t>(d[axis] - 1, pos + radius);
          for (std::int64_t x = lo; x <= hi; ++x) next.data[std::size_t(std::int64_t(idx) + (x - pos) * stride)] = 1;
        }
    cur = std::move(next);
  }
  return cur;
}

}  // namespace tmsplan::registration_detail
