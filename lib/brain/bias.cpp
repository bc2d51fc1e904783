// N3-style bias-field estimation (Sled, Zijdenbos & Evans 1998, IEEE TMI 17:87), with a
// Gaussian-smoothed field in place of N3's B-splines, on a coarse grid.
#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <vector>

#include "tmsplan/brain.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {
namespace {

Grid coarse_grid(const Grid& g, double mm) {
  const Eigen::Vector3d sp = g.spacing_mm();
  Grid c;
  Eigen::Vector3d factor;
  for (int a = 0; a < 3; ++a) {
    factor[a] = std::max(1.0, std::round(mm / sp[a]));
    c.dim[a] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(double(g.dim[a]) / factor[a])));
  }
  // Coarse voxel centre = centre of its block of fine voxels.
  Eigen::Matrix4d scale = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    scale(a, a) = factor[a];
    scale(a, 3) = (factor[a] - 1) / 2.0;
  }
  c.vox2ras = RasMatrix(g.vox2ras.m * scale);
  return c;
}

// The coarse voxel of each fine voxel along each axis, when fine2coarse is the block map of
// coarse_grid (scale 1 / f, offset -(f - 1) / 2f, up to rounding): the coarse position of fine
// voxel i is (i - (f - 1) / 2) / f, at least 1 / 2f from a half-integer, so it rounds to i / f
// whatever the rounding of the matrix. Empty when fine2coarse is not such a map.
std::array<std::vector<std::int64_t>, 3> block_index(const Eigen::Matrix4d& fine2coarse, const Grid& fine,
                                                     const Grid& coarse) {
  Eigen::Matrix4d expected = Eigen::Matrix4d::Identity();
  std::array<std::int64_t, 3> f{1, 1, 1};
  std::array<std::vector<std::int64_t>, 3> none;
  for (int a = 0; a < 3; ++a) {
    if (!(fine2coarse(a, a) > 1e-3 && fine2coarse(a, a) < 2)) return none;
    f[std::size_t(a)] = std::max<std::int64_t>(1, std::llround(1.0 / fine2coarse(a, a)));
    expected(a, a) = 1.0 / double(f[std::size_t(a)]);
    expected(a, 3) = -(double(f[std::size_t(a)]) - 1) / (2.0 * double(f[std::size_t(a)]));
  }
  const double tolerance = 1e-9 / double(std::max({fine.dim[0], fine.dim[1], fine.dim[2], std::int64_t(1)}));
  if ((fine2coarse - expected).cwiseAbs().maxCoeff() > tolerance) return none;
  std::array<std::vector<std::int64_t>, 3> idx;
  for (int a = 0; a < 3; ++a) {
    if (coarse.dim[std::size_t(a)] * f[std::size_t(a)] < fine.dim[std::size_t(a)]) return none;
    for (std::int64_t i = 0; i < fine.dim[std::size_t(a)]; ++i) idx[std::size_t(a)].push_back(i / f[std::size_t(a)]);
  }
  return idx;
}

void block_sums(const Image& image, const Mask& mask, const Grid& coarse, const Eigen::Matrix4d& fine2coarse,
                std::vector<double>& sum, std::vector<double>& n, std::vector<double>& all);

// Block average of `image` over `mask` onto the coarse grid; weight = fraction of the block inside.
void block_average(const Image& image, const Mask& mask, const Grid& coarse, Image& mean, Image& weight) {
  mean = Image(coarse, 0.0f);
  weight = Image(coarse, 0.0f);
  const Eigen::Matrix4d fine2coarse = coarse.vox2ras.m.inverse() * image.grid.vox2ras.m;
  std::vector<double> sum(coarse.voxels(), 0.0), n(coarse.voxels(), 0.0), all(coarse.voxels(), 0.0);
  const auto idx = block_index(fine2coarse, image.grid, coarse);
  if (!idx[0].empty()) {  // the same sums in the same order, without a matrix product per voxel
    const auto& d = image.grid.dim;
    for (std::int64_t k = 0; k < d[2]; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j) {
        const std::size_t row = image.grid.index(0, j, k);
        const std::size_t qrow = coarse.index(0, idx[1][std::size_t(j)], idx[2][std::size_t(k)]);
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t q = qrow + std::size_t(idx[0][std::size_t(i)]);
          all[q] += 1;
          if (mask.data[row + std::size_t(i)]) {
            sum[q] += image.data[row + std::size_t(i)];
            n[q] += 1;
          }
        }
      }
  } else {
    block_sums(image, mask, coarse, fine2coarse, sum, n, all);
  }
  for (std::size_t q = 0; q < coarse.voxels(); ++q) {
    if (n[q] > 0) mean.data[q] = static_cast<float>(sum[q] / n[q]);
    weight.data[q] = all[q] > 0 ? static_cast<float>(n[q] / all[q]) : 0.0f;
  }
}

// The general case of block_average's sums: each fine voxel's coarse voxel by the matrix.
void block_sums(const Image& image, const Mask& mask, const Grid& coarse, const Eigen::Matrix4d& fine2coarse,
                std::vector<double>& sum, std::vector<double>& n, std::vector<double>& all) {
  for (std::int64_t k = 0; k < image.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < image.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < image.grid.dim[0]; ++i) {
        const Eigen::Vector3d c = fine2coarse.topLeftCorner<3, 3>() * Eigen::Vector3d(double(i), double(j), double(k)) +
                                  fine2coarse.topRightCorner<3, 1>();
        const auto ci = std::lround(c[0]), cj = std::lround(c[1]), ck = std::lround(c[2]);
        if (!coarse.inside(ci, cj, ck)) continue;
        const std::size_t q = coarse.index(ci, cj, ck);
        all[q] += 1;
        if (mask(i, j, k)) {
          sum[q] += image(i, j, k);
          n[q] += 1;
        }
      }
}

// The DFT's factors for n bins zero-padded to m = 2 n, forward (k, t) -> e^(-2 pi i k t / m) and
// inverse, computed once per field and shared by its iterations.
struct Twiddles {
  int n = 0;
  std::vector<std::complex<double>> forward, inverse;  // [k * n + t]
  explicit Twiddles(int bins) : n(bins) {
    const int m = 2 * n;
    forward.resize(std::size_t(m) * std::size_t(n));
    inverse.resize(forward.size());
    for (int k = 0; k < m; ++k)
      for (int t = 0; t < n; ++t) {
        forward[std::size_t(k) * std::size_t(n) + std::size_t(t)] = std::polar(1.0, -2 * M_PI * k * t / m);
        inverse[std::size_t(k) * std::size_t(n) + std::size_t(t)] = std::polar(1.0, 2 * M_PI * k * t / m);
      }
  }
};

// Wiener deconvolution of a histogram by a Gaussian (N3), via a direct DFT (bins are few).
std::vector<double> sharpen(const std::vector<double>& hist, double bin_width, double fwhm, const Twiddles& w) {
  const int n = static_cast<int>(hist.size());
  const int m = 2 * n;  // zero padding against wrap-around
  if (w.n != n) throw Error("sharpen: twiddle factors for another number of bins");
  std::vector<std::complex<double>> h(m), g(m), out(m);
  const double sigma = fwhm / 2.35482 / bin_width;
  for (int k = 0; k < m; ++k) {
    std::complex<double> sh = 0;
    for (int t = 0; t < n; ++t)
      sh += hist[std::size_t(t)] * w.forward[std::size_t(k) * std::size_t(n) + std::size_t(t)];
    h[std::size_t(k)] = sh;
    const double f = std::min(k, m - k) / double(m);
    g[std::size_t(k)] = std::exp(-2.0 * M_PI * M_PI * sigma * sigma * f * f);
  }
  const double noise = 0.01;
  for (int k = 0; k < m; ++k) {
    const auto gk = g[std::size_t(k)];
    out[std::size_t(k)] = h[std::size_t(k)] * std::conj(gk) / (std::norm(gk) + noise);
  }
  std::vector<double> u(std::size_t(n), 0.0);
  for (int t = 0; t < n; ++t) {
    std::complex<double> s = 0;
    for (int k = 0; k < m; ++k) s += out[std::size_t(k)] * w.inverse[std::size_t(k) * std::size_t(n) + std::size_t(t)];
    u[std::size_t(t)] = std::max(0.0, s.real() / m);
  }
  return u;
}

}  // namespace

Image estimate_bias_field(const Image& t1, const Mask& mask, const BiasOptions& options) {
  const Grid coarse = coarse_grid(t1.grid, options.working_mm);
  Image mean, weight;
  block_average(t1, mask, coarse, mean, weight);
  Mask cmask(coarse, 0);
  std::vector<std::size_t> idx;
  for (std::size_t q = 0; q < coarse.voxels(); ++q)
    if (weight.data[q] > 0.5f && mean.data[q] > 0) {
      cmask.data[q] = 1;
      idx.push_back(q);
    }
  if (idx.size() < 100) throw Error("too little tissue to estimate the bias field");
  std::vector<double> logv(coarse.voxels(), 0.0);
  for (auto q : idx) logv[q] = std::log(double(mean.data[q]));
  Image field(coarse, 0.0f);                                                        // log field
  const Image weight_sum = gaussian_smooth(to_image(cmask), options.smoothing_mm);  // normalised convolution
  const int bins = 200;
  const Twiddles twiddles(bins);
  for (int it = 0; it < options.iterations; ++it) {
    double lo = 1e300, hi = -1e300;
    for (auto q : idx) {
      const double v = logv[q] - field.data[q];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const double width = (hi - lo) / (bins - 1) + 1e-12;
    std::vector<double> hist(bins, 0.0);
    for (auto q : idx) {
      const double x = (logv[q] - field.data[q] - lo) / width;
      const int b = std::clamp(static_cast<int>(x), 0, bins - 2);
      const double f = x - b;
      hist[std::size_t(b)] += 1 - f;
      hist[std::size_t(b + 1)] += f;
    }
    const auto u = sharpen(hist, width, options.fwhm, twiddles);
    // E[u | v] for each observed bin v: sum_u u * G(v-u) U(u) / sum_u G(v-u) U(u)
    const double sigma = options.fwhm / 2.35482 / width;
    // G depends on |v - t| only: one exp per distance (the same values as one per pair).
    std::vector<double> gauss(bins);
    for (int d = 0; d < bins; ++d) gauss[std::size_t(d)] = std::exp(-0.5 * d * d / (sigma * sigma));
    std::vector<double> expected(bins, 0.0);
    for (int v = 0; v < bins; ++v) {
      double num = 0, den = 0;
      for (int t = 0; t < bins; ++t) {
        const double w = gauss[std::size_t(std::abs(v - t))] * u[std::size_t(t)];
        num += w * (lo + t * width);
        den += w;
      }
      expected[std::size_t(v)] = den > 0 ? num / den : lo + v * width;
    }
    Image residual(coarse, 0.0f);
    for (auto q : idx) {
      const double v = logv[q] - field.data[q];
      const double x = std::clamp((v - lo) / width, 0.0, double(bins - 1));
      const int b = std::min(static_cast<int>(x), bins - 2);
      const double f = x - b;
      const double e = expected[std::size_t(b)] * (1 - f) + expected[std::size_t(b + 1)] * f;
      residual.data[q] = static_cast<float>(v - e);
    }
    Image smooth = gaussian_smooth(residual, options.smoothing_mm);
    for (auto q : idx) smooth.data[q] = weight_sum.data[q] > 1e-6f ? smooth.data[q] / weight_sum.data[q] : 0.0f;
    double change = 0;
    for (auto q : idx) {
      field.data[q] += smooth.data[q];
      change += std::abs(smooth.data[q]);
    }
    if (change / double(idx.size()) < 1e-4) break;
  }
  // Extend the field smoothly outside the mask, remove its mean (keep the intensity scale),
  // then bring it to the full grid.
  Image extended = masked_smooth(field, cmask, options.smoothing_mm);
  for (auto q : idx) extended.data[q] = field.data[q];
  extended = masked_smooth(extended, mask_or(cmask, mask_not(cmask)), options.working_mm);
  double mean_log = 0;
  for (auto q : idx) mean_log += extended.data[q];
  mean_log /= double(idx.size());
  for (auto& v : extended.data) v = static_cast<float>(std::exp(double(v) - mean_log));
  return resample_affine(extended, t1.grid, Eigen::Matrix4d::Identity(), Interp::Linear, 1.0f);
}

}  // namespace tmsplan
