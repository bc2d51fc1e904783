#include "tmsplan/filters.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tmsplan/error.hpp"
#include "tmsplan/parallel.hpp"

namespace tmsplan {
namespace {

// Applies a 1D operation along axis `axis` to every line of the volume, in parallel over lines.
template <class T, class Op> void for_each_line(Volume<T>& vol, int axis, Op op) {
  const auto& d = vol.grid.dim;
  const int a1 = axis == 0 ? 1 : 0;
  const int a2 = axis == 2 ? 1 : 2;
  const std::int64_t n = d[axis];
  const std::size_t stride = axis == 0 ? 1 : axis == 1 ? std::size_t(d[0]) : std::size_t(d[0] * d[1]);
  const std::int64_t lines = d[a1] * d[a2];
  parallel_for(lines, [&](std::int64_t l0, std::int64_t l1) {
    std::vector<double> line(static_cast<std::size_t>(n)), out(static_cast<std::size_t>(n));
    for (std::int64_t l = l0; l < l1; ++l) {
      std::int64_t idx[3] = {0, 0, 0};
      idx[a1] = l % d[a1];
      idx[a2] = l / d[a1];
      const std::size_t base = vol.grid.index(idx[0], idx[1], idx[2]);
      for (std::int64_t t = 0; t < n; ++t) line[std::size_t(t)] = double(vol.data[base + std::size_t(t) * stride]);
      op(line, out);
      for (std::int64_t t = 0; t < n; ++t)
        vol.data[base + std::size_t(t) * stride] = static_cast<T>(out[std::size_t(t)]);
    }
  });
}

std::vector<double> gaussian_kernel(double sigma_vox) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3.0 * sigma_vox)));
  std::vector<double> k(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    k[std::size_t(i + radius)] = std::exp(-0.5 * i * i / (sigma_vox * sigma_vox));
    sum += k[std::size_t(i + radius)];
  }
  for (auto& v : k) v /= sum;
  return k;
}

// Convolves every line of `data` (dims d) along `axis` with the kernel k (odd length), the border
// value replicated; Acc is the accumulation type. For each output voxel the products are summed
// in kernel order, so rows (axes 1, 2: whole contiguous x-rows at a time, vectorisable) and lines
// (axis 0) give the same bits as a plain per-voxel loop. Per-index writes: thread-independent.
template <class Acc>
void convolve_axis(std::vector<float>& data, const std::array<std::int64_t, 3>& d, int axis,
                   const std::vector<double>& kernel) {
  const int r = static_cast<int>(kernel.size() / 2);
  std::vector<Acc> k(kernel.size());
  for (std::size_t t = 0; t < k.size(); ++t) k[t] = static_cast<Acc>(kernel[t]);
  const std::size_t nx = std::size_t(d[0]), ny = std::size_t(d[1]);
  std::vector<float> out(data.size());
  if (axis == 0) {
    parallel_for(d[1] * d[2], [&](std::int64_t l0, std::int64_t l1) {
      std::vector<Acc> line(nx + 2 * std::size_t(r));
      for (std::int64_t l = l0; l < l1; ++l) {
        const float* src = data.data() + std::size_t(l) * nx;
        for (std::int64_t x = -r; x < d[0] + r; ++x)
          line[std::size_t(x + r)] = static_cast<Acc>(src[std::clamp<std::int64_t>(x, 0, d[0] - 1)]);
        float* dst = out.data() + std::size_t(l) * nx;
        for (std::size_t x = 0; x < nx; ++x) {
          Acc acc = 0;
          for (std::size_t t = 0; t < k.size(); ++t) acc += k[t] * line[x + t];
          dst[x] = static_cast<float>(acc);
        }
      }
    });
  } else {
    // Rows along y (axis 1) within a z-slice, or along z (axis 2) at a fixed y.
    const std::int64_t n = d[axis], outer = axis == 1 ? d[2] : d[1];
    const std::size_t step = axis == 1 ? nx : nx * ny;
    parallel_for(outer, [&](std::int64_t o0, std::int64_t o1) {
      std::vector<Acc> acc(nx);
      for (std::int64_t o = o0; o < o1; ++o) {
        const std::size_t base = axis == 1 ? std::size_t(o) * nx * ny : std::size_t(o) * nx;
        for (std::int64_t x = 0; x < n; ++x) {
          std::fill(acc.begin(), acc.end(), Acc(0));
          for (int t = -r; t <= r; ++t) {
            const float* row = data.data() + base + std::size_t(std::clamp<std::int64_t>(x + t, 0, n - 1)) * step;
            const Acc w = k[std::size_t(t + r)];
            for (std::size_t i = 0; i < nx; ++i) acc[i] += w * static_cast<Acc>(row[i]);
          }
          float* dst = out.data() + base + std::size_t(x) * step;
          for (std::size_t i = 0; i < nx; ++i) dst[i] = static_cast<float>(acc[i]);
        }
      }
    });
  }
  data.swap(out);
}

// 1D squared distance transform (Felzenszwalb & Huttenlocher 2012) with sample spacing h.
void edt_1d(const std::vector<double>& f, std::vector<double>& d, double h) {
  const int n = static_cast<int>(f.size());
  const double inf = std::numeric_limits<double>::infinity();
  bool all_zero = true;
  for (double x : f) all_zero = all_zero && x == 0.0;
  if (all_zero) {
    std::fill(d.begin(), d.end(), 0.0);
    return;
  }
  thread_local std::vector<int> v;
  thread_local std::vector<double> z;
  v.resize(static_cast<std::size_t>(n));
  z.resize(static_cast<std::size_t>(n + 1));
  int k = -1;
  for (int q = 0; q < n; ++q) {
    if (f[std::size_t(q)] == inf) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -inf;
      z[1] = inf;
      continue;
    }
    double s;
    while (true) {
      const int p = v[std::size_t(k)];
      s = ((f[std::size_t(q)] + h * h * q * q) - (f[std::size_t(p)] + h * h * p * p)) / (2.0 * h * h * (q - p));
      if (s <= z[std::size_t(k)]) {
        --k;
        if (k < 0) break;
      } else {
        break;
      }
    }
    ++k;
    v[std::size_t(k)] = q;
    z[std::size_t(k)] = k == 0 ? -inf : s;
    z[std::size_t(k + 1)] = inf;
  }
  if (k < 0) {
    std::fill(d.begin(), d.end(), inf);
    return;
  }
  int j = 0;
  for (int q = 0; q < n; ++q) {
    while (z[std::size_t(j + 1)] < q) ++j;
    const int p = v[std::size_t(j)];
    d[std::size_t(q)] = h * h * (q - p) * (q - p) + f[std::size_t(p)];
  }
}

}  // namespace

void gaussian_smooth_voxels(Image& image, const Eigen::Vector3d& sigma_vox, Precision precision) {
  for (int a = 0; a < 3; ++a) {
    if (!(sigma_vox[a] >= 0.1)) continue;
    const auto k = gaussian_kernel(sigma_vox[a]);
    if (precision == Precision::Double)
      convolve_axis<double>(image.data, image.grid.dim, a, k);
    else
      convolve_axis<float>(image.data, image.grid.dim, a, k);
  }
}

Image gaussian_smooth(const Image& image, double sigma_mm) {
  Image out = image;
  gaussian_smooth_voxels(out, Eigen::Vector3d::Constant(sigma_mm).cwiseQuotient(image.grid.spacing_mm()));
  return out;
}

Image masked_smooth(const Image& image, const Mask& mask, double sigma_mm) {
  Image num(image.grid, 0.0f), den(image.grid, 0.0f);
  for (std::size_t i = 0; i < image.data.size(); ++i)
    if (mask.data[i]) {
      num.data[i] = image.data[i];
      den.data[i] = 1.0f;
    }
  num = gaussian_smooth(num, sigma_mm);
  den = gaussian_smooth(den, sigma_mm);
  Image out(image.grid, 0.0f);
  for (std::size_t i = 0; i < image.data.size(); ++i)
    out.data[i] = den.data[i] > 1e-6f ? num.data[i] / den.data[i] : 0.0f;
  return out;
}

namespace {
// Squared Euclidean distance (mm^2) to the nearest set voxel; +inf where the mask is empty.
Volume<double> squared_distance(const Mask& mask) {
  Volume<double> d2(mask.grid, 0.0);
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < mask.data.size(); ++i) d2.data[i] = mask.data[i] ? 0.0 : inf;
  const Eigen::Vector3d sp = mask.grid.spacing_mm();
  for (int a = 0; a < 3; ++a)
    for_each_line(d2, a, [&](const std::vector<double>& in, std::vector<double>& out) { edt_1d(in, out, sp[a]); });
  return d2;
}
}  // namespace

Image distance_to(const Mask& mask) {
  const Volume<double> d2 = squared_distance(mask);
  Image out(mask.grid, 0.0f);
  for (std::size_t i = 0; i < out.data.size(); ++i)
    out.data[i] = std::isfinite(d2.data[i]) ? static_cast<float>(std::sqrt(d2.data[i])) : 1e9f;
  return out;
}

Mask dilate(const Mask& mask, double radius_mm) {
  const Volume<double> d2 = squared_distance(mask);
  // A tolerance of 1 um: spacings of 0.99999 and 1.00001 mm (float headers, DICOM vs NIfTI) must
  // give the same ball, not drop or keep the neighbours at exactly the radius.
  const double r2 = (radius_mm + 1e-3) * (radius_mm + 1e-3);
  Mask out(mask.grid, 0);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = d2.data[i] <= r2 ? 1 : 0;
  return out;
}

Mask dilate_box(const Mask& mask, int radius_vox) {
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
          const std::int64_t lo = std::max<std::int64_t>(0, pos - radius_vox);
          const std::int64_t hi = std::min<std::int64_t>(d[axis] - 1, pos + radius_vox);
          for (std::int64_t x = lo; x <= hi; ++x) next.data[std::size_t(std::int64_t(idx) + (x - pos) * stride)] = 1;
        }
    cur = std::move(next);
  }
  return cur;
}

Mask erode(const Mask& mask, double radius_mm) { return mask_not(dilate(mask_not(mask), radius_mm)); }
Mask open(const Mask& mask, double radius_mm) { return dilate(erode(mask, radius_mm), radius_mm); }
Mask close(const Mask& mask, double radius_mm) { return erode(dilate(mask, radius_mm), radius_mm); }

Components connected_components(const Mask& mask) {
  Components c;
  c.labels = Volume<std::int32_t>(mask.grid, 0);
  c.sizes.push_back(0);
  const auto& d = mask.grid.dim;
  std::vector<std::size_t> stack;
  std::int32_t next = 0;
  for (std::size_t start = 0; start < mask.data.size(); ++start) {
    if (!mask.data[start] || c.labels.data[start]) continue;
    ++next;
    std::size_t size = 0;
    stack.push_back(start);
    c.labels.data[start] = next;
    while (!stack.empty()) {
      const std::size_t p = stack.back();
      stack.pop_back();
      ++size;
      const auto i = std::int64_t(p % std::size_t(d[0]));
      const auto j = std::int64_t((p / std::size_t(d[0])) % std::size_t(d[1]));
      const auto k = std::int64_t(p / std::size_t(d[0] * d[1]));
      const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                     {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& n : nb) {
        if (!mask.grid.inside(n[0], n[1], n[2])) continue;
        const std::size_t q = mask.grid.index(n[0], n[1], n[2]);
        if (mask.data[q] && !c.labels.data[q]) {
          c.labels.data[q] = next;
          stack.push_back(q);
        }
      }
    }
    c.sizes.push_back(size);
  }
  return c;
}

Mask largest_component(const Mask& mask) {
  const Components c = connected_components(mask);
  Mask out(mask.grid, 0);
  if (c.sizes.size() <= 1) return out;
  const auto best = std::int32_t(std::max_element(c.sizes.begin() + 1, c.sizes.end()) - c.sizes.begin());
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = c.labels.data[i] == best ? 1 : 0;
  return out;
}

Mask components_touching(const Mask& mask, const Mask& seed) {
  const Components c = connected_components(mask);
  std::vector<char> keep(c.sizes.size(), 0);
  for (std::size_t i = 0; i < mask.data.size(); ++i)
    if (seed.data[i] && c.labels.data[i]) keep[std::size_t(c.labels.data[i])] = 1;
  Mask out(mask.grid, 0);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = keep[std::size_t(c.labels.data[i])] ? 1 : 0;
  return out;
}

Mask fill_holes(const Mask& mask) {
  // Flood the background from the volume's border; whatever it does not reach is a hole.
  const auto& d = mask.grid.dim;
  Mask reached(mask.grid, 0);
  std::vector<std::size_t> stack;
  auto push = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    const std::size_t q = mask.grid.index(i, j, k);
    if (!mask.data[q] && !reached.data[q]) {
      reached.data[q] = 1;
      stack.push_back(q);
    }
  };
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (i == 0 || j == 0 || k == 0 || i == d[0] - 1 || j == d[1] - 1 || k == d[2] - 1) push(i, j, k);
  const std::size_t sx = 1, sy = std::size_t(d[0]), sz = std::size_t(d[0] * d[1]);
  while (!stack.empty()) {
    const std::size_t p = stack.back();
    stack.pop_back();
    const auto i = std::int64_t(p % sy), j = std::int64_t((p / sy) % std::size_t(d[1])), k = std::int64_t(p / sz);
    auto visit = [&](std::size_t q) {
      if (!mask.data[q] && !reached.data[q]) {
        reached.data[q] = 1;
        stack.push_back(q);
      }
    };
    if (i > 0) visit(p - sx);
    if (i < d[0] - 1) visit(p + sx);
    if (j > 0) visit(p - sy);
    if (j < d[1] - 1) visit(p + sy);
    if (k > 0) visit(p - sz);
    if (k < d[2] - 1) visit(p + sz);
  }
  Mask out(mask.grid, 0);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = reached.data[i] ? 0 : 1;
  return out;
}

Mask fill_holes_2d(const Mask& mask) {
  Mask out = mask;
  const auto& d = mask.grid.dim;
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = axis == 0 ? 1 : 0, a2 = axis == 2 ? 1 : 2;
    Mask filled = out;
    parallel_for(d[axis], [&](std::int64_t s0, std::int64_t s1) {
      std::vector<std::uint8_t> seen;
      std::vector<std::pair<std::int64_t, std::int64_t>> stack;
      for (std::int64_t s = s0; s < s1; ++s) {
        seen.assign(std::size_t(d[a1] * d[a2]), 0);
        auto at = [&](std::int64_t u, std::int64_t v) {
          std::int64_t idx[3];
          idx[axis] = s;
          idx[a1] = u;
          idx[a2] = v;
          return out.grid.index(idx[0], idx[1], idx[2]);
        };
        for (std::int64_t u = 0; u < d[a1]; ++u)
          for (std::int64_t v = 0; v < d[a2]; ++v)
            if ((u == 0 || v == 0 || u == d[a1] - 1 || v == d[a2] - 1) && !out.data[at(u, v)] &&
                !seen[std::size_t(u + d[a1] * v)]) {
              seen[std::size_t(u + d[a1] * v)] = 1;
              stack.push_back({u, v});
              while (!stack.empty()) {
                auto [x, y] = stack.back();
                stack.pop_back();
                const std::int64_t nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
                for (const auto& n : nb) {
                  if (n[0] < 0 || n[1] < 0 || n[0] >= d[a1] || n[1] >= d[a2]) continue;
                  const std::size_t key = std::size_t(n[0] + d[a1] * n[1]);
                  if (seen[key] || out.data[at(n[0], n[1])]) continue;
                  seen[key] = 1;
                  stack.push_back({n[0], n[1]});
                }
              }
            }
        for (std::int64_t u = 0; u < d[a1]; ++u)
          for (std::int64_t v = 0; v < d[a2]; ++v)
            if (!seen[std::size_t(u + d[a1] * v)]) filled.data[at(u, v)] = 1;
      }
    });
    out = filled;
  }
  return out;
}

Mask mask_and(const Mask& a, const Mask& b) {
  Mask out(a.grid, 0);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = (a.data[i] && b.data[i]) ? 1 : 0;
  return out;
}
Mask mask_or(const Mask& a, const Mask& b) {
  Mask out(a.grid, 0);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = (a.data[i] || b.data[i]) ? 1 : 0;
  return out;
}
Mask mask_not(const Mask& a) {
  Mask out(a.grid, 0);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = a.data[i] ? 0 : 1;
  return out;
}
std::size_t count(const Mask& mask) { return std::accumulate(mask.data.begin(), mask.data.end(), std::size_t(0)); }
double volume_ml(const Mask& mask) { return double(count(mask)) * mask.grid.voxel_volume_ml(); }

double dice(const Mask& a, const Mask& b) {
  if (a.data.size() != b.data.size()) throw Error("dice: masks on different grids");
  std::size_t both = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    na += a.data[i] != 0;
    nb += b.data[i] != 0;
    both += (a.data[i] && b.data[i]);
  }
  return na + nb == 0 ? 1.0 : 2.0 * double(both) / double(na + nb);
}

Crop bounding_crop(const Mask& mask, std::int64_t margin_vox) {
  std::array<std::int64_t, 3> lo{mask.grid.dim}, hi{-1, -1, -1};
  for (std::int64_t k = 0; k < mask.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < mask.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < mask.grid.dim[0]; ++i)
        if (mask(i, j, k)) {
          const std::int64_t p[3] = {i, j, k};
          for (int a = 0; a < 3; ++a) {
            lo[std::size_t(a)] = std::min(lo[std::size_t(a)], p[a]);
            hi[std::size_t(a)] = std::max(hi[std::size_t(a)], p[a]);
          }
        }
  Crop c;
  if (hi[0] < 0) throw Error("bounding box of an empty mask");
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  for (std::size_t a = 0; a < 3; ++a) {
    c.offset[a] = std::max<std::int64_t>(0, lo[a] - margin_vox);
    const std::int64_t end = std::min<std::int64_t>(mask.grid.dim[a], hi[a] + margin_vox + 1);
    c.grid.dim[a] = end - c.offset[a];
    shift(int(a), 3) = double(c.offset[a]);
  }
  c.grid.vox2ras = RasMatrix(mask.grid.vox2ras.m * shift);
  return c;
}

Eigen::Vector3d centroid_ras(const Mask& mask) {
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  double n = 0;
  for (std::int64_t k = 0; k < mask.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < mask.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < mask.grid.dim[0]; ++i)
        if (mask(i, j, k)) {
          sum += Eigen::Vector3d(double(i), double(j), double(k));
          n += 1;
        }
  if (n == 0) throw Error("centroid of an empty mask");
  return voxel_to_ras(mask.grid.vox2ras, VoxelIndex(sum / n)).v;
}

double quantile(const Image& image, double q, const Mask* mask) {
  std::vector<float> v;
  v.reserve(image.data.size());
  for (std::size_t i = 0; i < image.data.size(); ++i)
    if (!mask || mask->data[i]) v.push_back(image.data[i]);
  if (v.empty()) throw Error("quantile of an empty set");
  return quantile(std::move(v), q);
}

float quantile(std::vector<float> values, double q) {
  if (values.empty()) return 0.0f;
  const auto n = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * double(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n), values.end());
  return values[n];
}

double otsu_threshold(const Image& image, const Mask* mask) {
  const double lo = quantile(image, 0.0, mask), hi = quantile(image, 0.999, mask);
  if (!(hi > lo)) return lo;
  const int bins = 256;
  std::vector<double> hist(bins, 0.0);
  for (std::size_t i = 0; i < image.data.size(); ++i) {
    if (mask && !mask->data[i]) continue;
    const int b = std::clamp(static_cast<int>((image.data[i] - lo) / (hi - lo) * (bins - 1)), 0, bins - 1);
    hist[std::size_t(b)] += 1;
  }
  double total = 0, sum = 0;
  for (int b = 0; b < bins; ++b) {
    total += hist[std::size_t(b)];
    sum += b * hist[std::size_t(b)];
  }
  double w0 = 0, sum0 = 0, best = -1;
  int best_b = 0;
  for (int b = 0; b < bins; ++b) {
    w0 += hist[std::size_t(b)];
    sum0 += b * hist[std::size_t(b)];
    if (w0 == 0 || w0 == total) continue;
    const double m0 = sum0 / w0, m1 = (sum - sum0) / (total - w0);
    const double between = w0 * (total - w0) * (m0 - m1) * (m0 - m1);
    if (between > best) {
      best = between;
      best_b = b;
    }
  }
  return lo + (best_b + 0.5) / (bins - 1) * (hi - lo);
}

}  // namespace tmsplan
