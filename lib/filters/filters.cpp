#include "tmsplan/filters.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tmsplan/error.hpp"
#include "tmsplan/parallel.hpp"

namespace tmsplan {
namespace {

// Applies a 1D operation along axis `axis` (1 or 2) to every line of the volume, in parallel. Lines
// are gathered kBlock neighbours along x at a time (adjacent in memory), so the strided reads and
// writes use whole cache lines; each line's operation is the same, whatever the block.
template <class T, class Op> void for_each_line(Volume<T>& vol, int axis, Op op) {
  constexpr std::int64_t kBlock = 16;
  const auto& d = vol.grid.dim;
  const int a2 = axis == 2 ? 1 : 2;  // the other axis besides x
  const std::int64_t n = d[axis];
  const std::size_t stride = axis == 1 ? std::size_t(d[0]) : std::size_t(d[0] * d[1]);
  const std::int64_t blocks_x = (d[0] + kBlock - 1) / kBlock;
  parallel_for(blocks_x * d[a2], [&](std::int64_t b0, std::int64_t b1) {
    std::vector<std::vector<double>> lines(static_cast<std::size_t>(kBlock),
                                           std::vector<double>(static_cast<std::size_t>(n)));
    std::vector<double> out(static_cast<std::size_t>(n));
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t x0 = (b % blocks_x) * kBlock, width = std::min(kBlock, d[0] - x0);
      std::int64_t idx[3] = {x0, 0, 0};
      idx[a2] = b / blocks_x;
      const std::size_t base = vol.grid.index(idx[0], idx[1], idx[2]);
      for (std::int64_t t = 0; t < n; ++t) {
        const T* row = vol.data.data() + base + std::size_t(t) * stride;
        for (std::int64_t x = 0; x < width; ++x) lines[std::size_t(x)][std::size_t(t)] = double(row[x]);
      }
      for (std::int64_t x = 0; x < width; ++x) {
        op(lines[std::size_t(x)], out);
        lines[std::size_t(x)].swap(out);
      }
      for (std::int64_t t = 0; t < n; ++t) {
        T* row = vol.data.data() + base + std::size_t(t) * stride;
        for (std::int64_t x = 0; x < width; ++x) row[x] = static_cast<T>(lines[std::size_t(x)][std::size_t(t)]);
      }
    }
  });
}

}  // namespace

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

namespace {

// dst[i] = sum over taps t (in order, from 0) of k[t] * src(t, i), for i < n, converted to float.
// kBlock outputs at a time are summed in registers (no store of the partial sums between taps);
// each output is still its own sum in kernel order, so the bits are those of a per-voxel loop.
template <class Acc, class Src>
void convolve_run(std::size_t n, const std::vector<Acc>& k, const Src& src, float* __restrict dst) {
  constexpr std::size_t kBlock = 8;
  const std::size_t taps = k.size();
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    Acc s[kBlock] = {};
    for (std::size_t t = 0; t < taps; ++t) {
      const Acc w = k[t];
      const auto* in = src(t) + i;
      for (std::size_t l = 0; l < kBlock; ++l) s[l] += w * static_cast<Acc>(in[l]);
    }
    for (std::size_t l = 0; l < kBlock; ++l) dst[i + l] = static_cast<float>(s[l]);
  }
  for (; i < n; ++i) {
    Acc s = 0;
    for (std::size_t t = 0; t < taps; ++t) s += k[t] * static_cast<Acc>(src(t)[i]);
    dst[i] = static_cast<float>(s);
  }
}

// Convolves every line of `data` (dims d) along `axis` with the kernel k (odd length), the border
// value replicated; Acc is the accumulation type. For each output voxel the products are summed
// in kernel order (convolve_run), along x over a padded copy of the line, along y and z over whole
// contiguous x-rows: the same bits as a plain per-voxel loop. Per-index writes: thread-independent.
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
        convolve_run(
            nx, k, [&](std::size_t t) { return line.data() + t; }, out.data() + std::size_t(l) * nx);
      }
    });
  } else {
    // Rows along y (axis 1) within a z-slice, or along z (axis 2) at a fixed y.
    const std::int64_t n = d[axis], outer = axis == 1 ? d[2] : d[1];
    const std::size_t step = axis == 1 ? nx : nx * ny;
    parallel_for(outer, [&](std::int64_t o0, std::int64_t o1) {
      std::vector<const float*> rows(k.size());
      for (std::int64_t o = o0; o < o1; ++o) {
        const std::size_t base = axis == 1 ? std::size_t(o) * nx * ny : std::size_t(o) * nx;
        for (std::int64_t x = 0; x < n; ++x) {
          for (int t = -r; t <= r; ++t)
            rows[std::size_t(t + r)] =
                data.data() + base + std::size_t(std::clamp<std::int64_t>(x + t, 0, n - 1)) * step;
          convolve_run(
              nx, k, [&](std::size_t t) { return rows[t]; }, out.data() + base + std::size_t(x) * step);
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
// Squared Euclidean distance (mm^2) to the nearest set voxel; +inf where the mask is empty. The
// first pass (along x, from the mask itself) is the 1D transform of a binary line: the squared
// distance to the nearest set voxel of the line, by the same expression edt_1d evaluates.
Volume<double> squared_distance(const Mask& mask) {
  Volume<double> d2(mask.grid, 0.0);
  const double inf = std::numeric_limits<double>::infinity();
  const Eigen::Vector3d sp = mask.grid.spacing_mm();
  const auto& d = mask.grid.dim;
  const double h = sp[0];
  parallel_for(d[1] * d[2], [&](std::int64_t l0, std::int64_t l1) {
    std::vector<std::int64_t> left(static_cast<std::size_t>(d[0]));
    for (std::int64_t l = l0; l < l1; ++l) {
      const std::uint8_t* m = mask.data.data() + std::size_t(l * d[0]);
      double* out = d2.data.data() + std::size_t(l * d[0]);
      std::int64_t last = -1;
      for (std::int64_t q = 0; q < d[0]; ++q) {
        if (m[q]) last = q;
        left[std::size_t(q)] = last;
      }
      std::int64_t next = -1;
      for (std::int64_t q = d[0] - 1; q >= 0; --q) {
        if (m[q]) next = q;
        const std::int64_t a = left[std::size_t(q)];
        std::int64_t p = a >= 0 && (next < 0 || q - a <= next - q) ? a : next;
        out[q] = p < 0 ? inf : h * h * int(q - p) * int(q - p);
      }
    }
  });
  for (int a = 1; a < 3; ++a)
    for_each_line(d2, a, [&](const std::vector<double>& in, std::vector<double>& out) { edt_1d(in, out, sp[a]); });
  return d2;
}

// The ball of dilate(): every voxel offset (a, b, c) whose squared length, summed as the distance
// transform sums it (z term + (y term + x term), each h * h * n * n), is within
// (radius + 1 um)^2; as rows: for each (b, c), the largest |a| inside (the sums grow with |a|).
struct BallRow {
  int b, c, w;
};
struct Ball {
  std::vector<BallRow> rows;
  std::array<int, 3> reach{0, 0, 0};  // largest |offset| along each axis
};

double offset_length2(const Eigen::Vector3d& sp, int a, int b, int c) {
  return sp[2] * sp[2] * c * c + (sp[1] * sp[1] * b * b + sp[0] * sp[0] * a * a);
}

Ball ball(const Eigen::Vector3d& sp, double radius_mm) {
  const double r2 = (radius_mm + 1e-3) * (radius_mm + 1e-3);
  Ball ball;
  int lim[3];
  for (int a = 0; a < 3; ++a) lim[a] = static_cast<int>(std::min(4096.0, std::floor((radius_mm + 1e-3) / sp[a]))) + 1;
  for (int c = -lim[2]; c <= lim[2]; ++c)
    for (int b = -lim[1]; b <= lim[1]; ++b) {
      int w = -1;
      while (w + 1 <= lim[0] && offset_length2(sp, w + 1, b, c) <= r2) ++w;
      if (w < 0) continue;
      ball.rows.push_back({b, c, w});
      ball.reach = {std::max(ball.reach[0], w), std::max(ball.reach[1], std::abs(b)),
                    std::max(ball.reach[2], std::abs(c))};
    }
  return ball;
}

// Dilation by a ball given as rows: out |= (x-distance to the mask <= w) shifted by (b, c), over
// whole x-rows. Per-slice writes: thread-independent.
Mask dilate_rows(const Mask& mask, const Ball& ball) {
  const auto& d = mask.grid.dim;
  const std::size_t nx = std::size_t(d[0]);
  // Distance along x (voxels, capped at 255) to the nearest set voxel of the row.
  std::vector<std::uint8_t> dx(mask.data.size());
  parallel_for(d[1] * d[2], [&](std::int64_t l0, std::int64_t l1) {
    for (std::int64_t l = l0; l < l1; ++l) {
      const std::uint8_t* m = mask.data.data() + std::size_t(l) * nx;
      std::uint8_t* o = dx.data() + std::size_t(l) * nx;
      int run = 255;
      for (std::size_t i = 0; i < nx; ++i) {
        run = m[i] ? 0 : std::min(255, run + 1);
        o[i] = static_cast<std::uint8_t>(run);
      }
      run = 255;
      for (std::size_t i = nx; i-- > 0;) {
        run = m[i] ? 0 : std::min(255, run + 1);
        o[i] = std::min(o[i], static_cast<std::uint8_t>(run));
      }
    }
  });
  Mask out(mask.grid, 0);
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (const BallRow& r : ball.rows) {
        if (k + r.c < 0 || k + r.c >= d[2]) continue;
        const std::uint8_t w = static_cast<std::uint8_t>(std::min(r.w, 254));
        const std::int64_t j0 = std::max<std::int64_t>(0, -r.b), j1 = std::min<std::int64_t>(d[1], d[1] - r.b);
        const std::size_t n = nx;  // locals: the byte stores below may alias anything else
        for (std::int64_t j = j0; j < j1; ++j) {
          std::uint8_t* __restrict o = out.data.data() + std::size_t(j + d[1] * k) * n;
          const std::uint8_t* __restrict src = dx.data() + std::size_t(j + r.b + d[1] * (k + r.c)) * n;
          for (std::size_t i = 0; i < n; ++i) o[i] |= static_cast<std::uint8_t>(src[i] <= w);
        }
      }
  });
  return out;
}

// Below this many rows per ball (summed over the radii), the rows beat a distance transform.
constexpr std::size_t kMaxBallRows = 120;

// The balls of the radii on a grid of this spacing (a crop has its parent's spacing).
std::vector<Ball> balls_of(const Eigen::Vector3d& sp, const std::vector<double>& radii_mm) {
  std::vector<Ball> balls;
  for (double r : radii_mm) balls.push_back(ball(sp, r));
  return balls;
}

// Dilations of `mask` by each radius (its ball in `balls`), all on `mask`'s grid (see dilate()).
std::vector<Mask> dilate_all(const Mask& mask, const std::vector<double>& radii_mm, const std::vector<Ball>& balls) {
  std::size_t rows = 0;
  for (const Ball& b : balls) rows += b.rows.size();
  std::vector<Mask> out;
  bool narrow = true;  // x half-widths within dilate_rows' 8-bit distances
  for (const Ball& b : balls) narrow = narrow && b.reach[0] <= 254;
  if (rows <= kMaxBallRows && narrow) {
    for (const Ball& b : balls) out.push_back(dilate_rows(mask, b));
    return out;
  }
  const Volume<double> d2 = squared_distance(mask);
  for (double radius_mm : radii_mm) {
    // A tolerance of 1 um: spacings of 0.99999 and 1.00001 mm (float headers, DICOM vs NIfTI) must
    // give the same ball, not drop or keep the neighbours at exactly the radius.
    const double r2 = (radius_mm + 1e-3) * (radius_mm + 1e-3);
    Mask m(mask.grid, 0);
    for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = d2.data[i] <= r2 ? 1 : 0;
    out.push_back(std::move(m));
  }
  return out;
}

bool nonempty(const Mask& mask) {
  return std::any_of(mask.data.begin(), mask.data.end(), [](std::uint8_t v) { return v != 0; });
}

// n empty masks on a grid: the dilations and erosions of an empty mask.
std::vector<Mask> empty_masks(const Grid& grid, std::size_t n) { return std::vector<Mask>(n, Mask(grid, 0)); }
}  // namespace

Image distance_to(const Mask& mask) {
  const Volume<double> d2 = squared_distance(mask);
  Image out(mask.grid, 0.0f);
  for (std::size_t i = 0; i < out.data.size(); ++i)
    out.data[i] = std::isfinite(d2.data[i]) ? static_cast<float>(std::sqrt(d2.data[i])) : 1e9f;
  return out;
}

// The dilation works in the mask's bounding box grown beyond the largest ball: nothing outside
// it is reached, and inside it the set voxels are all there.
std::vector<Mask> dilate(const Mask& mask, const std::vector<double>& radii_mm) {
  if (!nonempty(mask)) return empty_masks(mask.grid, radii_mm.size());
  const std::vector<Ball> balls = balls_of(mask.grid.spacing_mm(), radii_mm);
  std::int64_t margin = 1;
  for (const Ball& b : balls)
    margin = std::max<std::int64_t>(margin, *std::max_element(b.reach.begin(), b.reach.end()) + 1);
  const Crop box = bounding_crop(mask, margin);
  std::vector<Mask> out;
  for (Mask& m : dilate_all(crop(mask, box), radii_mm, balls)) out.push_back(uncrop(m, mask.grid, box));
  return out;
}

Mask dilate(const Mask& mask, double radius_mm) { return std::move(dilate(mask, std::vector<double>{radius_mm})[0]); }

// Erosion = not dilate(not mask) (voxels beyond the grid are neither). It works in the mask's
// bounding box grown by one voxel: a background voxel beyond that box has one inside the box's
// rim (clamp it to the box) at least as near along every axis, so the balls hit the same.
std::vector<Mask> erode(const Mask& mask, const std::vector<double>& radii_mm) {
  if (!nonempty(mask)) return empty_masks(mask.grid, radii_mm.size());
  const Crop box = bounding_crop(mask, 1);
  std::vector<Mask> out;
  for (Mask& m : dilate_all(mask_not(crop(mask, box)), radii_mm, balls_of(mask.grid.spacing_mm(), radii_mm)))
    out.push_back(uncrop(mask_not(m), mask.grid, box));
  return out;
}

Mask erode(const Mask& mask, double radius_mm) { return std::move(erode(mask, std::vector<double>{radius_mm})[0]); }
Mask outer_layer(const Mask& mask, double width_mm) {
  Mask layer = erode(mask, width_mm);
  for (std::size_t i = 0; i < layer.data.size(); ++i) layer.data[i] = mask.data[i] && !layer.data[i] ? 1 : 0;
  return layer;
}

Mask dilate_box(const Mask& mask, int radius_vox) {
  // Separable: along each axis in turn, a voxel is set when a set voxel lies within radius_vox on
  // its line (the distance to the nearest one, forwards and backwards). Whole x-rows at a time
  // along y and z; per-index writes, so thread-independent.
  if (radius_vox < 0) return Mask(mask.grid, 0);  // no offset within a negative radius
  const auto& d = mask.grid.dim;
  const std::size_t nx = std::size_t(d[0]), ny = std::size_t(d[1]);
  const std::int32_t r = radius_vox, far = std::numeric_limits<std::int32_t>::max() / 2;
  Mask cur = mask;
  Mask next(mask.grid, 0);
  parallel_for(d[1] * d[2], [&](std::int64_t l0, std::int64_t l1) {
    for (std::int64_t l = l0; l < l1; ++l) {
      const std::uint8_t* in = cur.data.data() + std::size_t(l) * nx;
      std::uint8_t* out = next.data.data() + std::size_t(l) * nx;
      std::int32_t run = far;
      for (std::size_t i = 0; i < nx; ++i) {
        run = in[i] ? 0 : std::min(far, run + 1);
        out[i] = run <= r ? 1 : 0;
      }
      run = far;
      for (std::size_t i = nx; i-- > 0;) {
        run = in[i] ? 0 : std::min(far, run + 1);
        out[i] |= run <= r ? 1 : 0;
      }
    }
  });
  std::swap(cur, next);
  // Along y (axis 1, rows of a slice) and z (axis 2, rows at a fixed y): `line(p)` is the x-row at
  // position p along the axis.
  for (int axis = 1; axis < 3; ++axis) {
    const std::int64_t n = d[axis], outer = axis == 1 ? d[2] : d[1];
    const std::size_t step = axis == 1 ? nx : nx * ny;
    parallel_for(outer, [&](std::int64_t o0, std::int64_t o1) {
      std::vector<std::int32_t> run(nx);
      for (std::int64_t o = o0; o < o1; ++o) {
        const std::size_t base = axis == 1 ? std::size_t(o) * nx * ny : std::size_t(o) * nx;
        std::fill(run.begin(), run.end(), far);
        for (std::int64_t p = 0; p < n; ++p) {
          const std::uint8_t* in = cur.data.data() + base + std::size_t(p) * step;
          std::uint8_t* out = next.data.data() + base + std::size_t(p) * step;
          for (std::size_t i = 0; i < nx; ++i) {
            run[i] = in[i] ? 0 : std::min(far, run[i] + 1);
            out[i] = run[i] <= r ? 1 : 0;
          }
        }
        std::fill(run.begin(), run.end(), far);
        for (std::int64_t p = n; p-- > 0;) {
          const std::uint8_t* in = cur.data.data() + base + std::size_t(p) * step;
          std::uint8_t* out = next.data.data() + base + std::size_t(p) * step;
          for (std::size_t i = 0; i < nx; ++i) {
            run[i] = in[i] ? 0 : std::min(far, run[i] + 1);
            out[i] |= run[i] <= r ? 1 : 0;
          }
        }
      }
    });
    std::swap(cur, next);
  }
  return cur;
}

Mask open(const Mask& mask, double radius_mm) { return dilate(erode(mask, radius_mm), radius_mm); }
Mask close(const Mask& mask, double radius_mm) { return erode(dilate(mask, radius_mm), radius_mm); }

namespace {
// The runs of voxels equal to `value` along x (whole rows, in memory order), joined when
// 6-connected (overlapping runs of adjacent rows, y - 1 or z - 1) by union-find.
struct Runs {
  std::vector<std::int64_t> row;  // j + ny k
  std::vector<std::int32_t> x0, x1;
  std::vector<std::int64_t> parent;
  std::int64_t root(std::int64_t a) {
    while (parent[std::size_t(a)] != a) {
      parent[std::size_t(a)] = parent[std::size_t(parent[std::size_t(a)])];
      a = parent[std::size_t(a)];
    }
    return a;
  }
  void unite(std::int64_t a, std::int64_t b) {
    a = root(a);
    b = root(b);
    if (a != b) parent[std::size_t(std::max(a, b))] = std::min(a, b);
  }
};

Runs runs_of(const Mask& mask, std::uint8_t value) {
  const auto& d = mask.grid.dim;
  const std::int64_t rows = d[1] * d[2];
  Runs r;
  std::vector<std::int64_t> first(std::size_t(rows) + 1, 0);
  for (std::int64_t l = 0; l < rows; ++l) {
    first[std::size_t(l)] = std::int64_t(r.row.size());
    const std::uint8_t* m = mask.data.data() + std::size_t(l * d[0]);
    for (std::int64_t x = 0; x < d[0];) {
      if ((m[x] != 0) != (value != 0)) {
        ++x;
        continue;
      }
      const std::int64_t start = x;
      while (x < d[0] && (m[x] != 0) == (value != 0)) ++x;
      r.row.push_back(l);
      r.x0.push_back(std::int32_t(start));
      r.x1.push_back(std::int32_t(x - 1));
    }
  }
  first[std::size_t(rows)] = std::int64_t(r.row.size());
  r.parent.resize(r.row.size());
  std::iota(r.parent.begin(), r.parent.end(), std::int64_t(0));
  // Joins the runs of row l with those of an earlier row e (both lists sorted by x).
  const auto join = [&](std::int64_t l, std::int64_t e) {
    std::int64_t a = first[std::size_t(l)], b = first[std::size_t(e)];
    const std::int64_t a_end = first[std::size_t(l) + 1], b_end = first[std::size_t(e) + 1];
    while (a < a_end && b < b_end) {
      if (r.x0[std::size_t(a)] <= r.x1[std::size_t(b)] && r.x0[std::size_t(b)] <= r.x1[std::size_t(a)]) r.unite(a, b);
      if (r.x1[std::size_t(a)] < r.x1[std::size_t(b)])
        ++a;
      else
        ++b;
    }
  };
  for (std::int64_t l = 0; l < rows; ++l) {
    if (l % d[1] > 0) join(l, l - 1);
    if (l >= d[1]) join(l, l - d[1]);
  }
  return r;
}
}  // namespace

Components connected_components(const Mask& mask) {
  Components c;
  c.labels = Volume<std::int32_t>(mask.grid, 0);
  c.sizes.push_back(0);
  Runs r = runs_of(mask, 1);
  // Labels in the order of each component's first voxel in memory (its first run).
  std::vector<std::int32_t> label(r.row.size(), 0);
  const std::size_t nx = std::size_t(mask.grid.dim[0]);
  for (std::size_t a = 0; a < r.row.size(); ++a) {
    const std::size_t root = std::size_t(r.root(std::int64_t(a)));
    if (!label[root]) {
      label[root] = std::int32_t(c.sizes.size());
      c.sizes.push_back(0);
    }
    const std::int32_t l = label[root];
    std::int32_t* out = c.labels.data.data() + std::size_t(r.row[a]) * nx;
    for (std::int32_t x = r.x0[a]; x <= r.x1[a]; ++x) out[x] = l;
    c.sizes[std::size_t(l)] += std::size_t(r.x1[a] - r.x0[a] + 1);
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
  // The background components that touch the volume's border are outside; the rest are holes.
  const auto& d = mask.grid.dim;
  Runs r = runs_of(mask, 0);
  std::vector<char> outside(r.row.size(), 0);
  for (std::size_t a = 0; a < r.row.size(); ++a) {
    const std::int64_t j = r.row[a] % d[1], k = r.row[a] / d[1];
    if (r.x0[a] == 0 || r.x1[a] == d[0] - 1 || j == 0 || j == d[1] - 1 || k == 0 || k == d[2] - 1)
      outside[std::size_t(r.root(std::int64_t(a)))] = 1;
  }
  Mask out(mask.grid, 1);
  const std::size_t nx = std::size_t(d[0]);
  for (std::size_t a = 0; a < r.row.size(); ++a)
    if (outside[std::size_t(r.root(std::int64_t(a)))])
      std::fill_n(out.data.begin() + std::ptrdiff_t(std::size_t(r.row[a]) * nx + std::size_t(r.x0[a])),
                  r.x1[a] - r.x0[a] + 1, std::uint8_t(0));
  return out;
}

namespace {
// Marks (1) the pixels of a nu x nv slice (0 background, 2 object) that background pixels connect
// (4-connected) to the border.
void flood_from_border(std::uint8_t* seen, std::int64_t nu, std::int64_t nv, std::vector<std::int64_t>& stack) {
  const auto push = [&](std::int64_t p) {
    if (seen[std::size_t(p)] == 0) {
      seen[std::size_t(p)] = 1;
      stack.push_back(p);
    }
  };
  for (std::int64_t u = 0; u < nu; ++u) {
    push(u);
    push(u + nu * (nv - 1));
  }
  for (std::int64_t v = 0; v < nv; ++v) {
    push(nu * v);
    push(nu - 1 + nu * v);
  }
  // Every border pixel is seen by now, so a step of +-1 that wraps into the next or the previous
  // row lands on one and is refused: only the ends of the slice need a test.
  const std::int64_t total = nu * nv;
  while (!stack.empty()) {
    const std::int64_t p = stack.back();
    stack.pop_back();
    if (p > 0) push(p - 1);
    if (p + 1 < total) push(p + 1);
    if (p >= nu) push(p - nu);
    if (p + nu < total) push(p + nu);
  }
}
}  // namespace

// Slice by slice: each slice (copied out) flooded from its border through background pixels
// (4-connected); what the flood does not reach is set. Slices are disjoint: filled in place. They
// are copied in and out kGroup neighbours at a time, so that slices across x read and write whole
// cache lines.
Mask fill_holes_2d(const Mask& mask) {
  constexpr std::int64_t kGroup = 16;
  Mask out = mask;
  const auto& d = mask.grid.dim;
  const std::int64_t stride[3] = {1, d[0], d[0] * d[1]};
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = axis == 0 ? 1 : 0, a2 = axis == 2 ? 1 : 2;
    const std::int64_t nu = d[a1], nv = d[a2], su = stride[a1], sv = stride[a2], ss = stride[axis];
    const std::size_t area = std::size_t(nu * nv);
    parallel_for(d[axis], [&](std::int64_t s0, std::int64_t s1) {
      std::vector<std::uint8_t> seen(std::size_t(kGroup) * area);
      std::vector<std::int64_t> stack;
      for (std::int64_t g0 = s0; g0 < s1; g0 += kGroup) {
        const std::int64_t gn = std::min(kGroup, s1 - g0);
        std::uint8_t* base = out.data.data() + std::size_t(g0 * ss);
        for (std::int64_t v = 0; v < nv; ++v)
          for (std::int64_t u = 0; u < nu; ++u) {
            const std::uint8_t* p = base + u * su + v * sv;
            for (std::int64_t g = 0; g < gn; ++g)
              seen[std::size_t(g) * area + std::size_t(u + nu * v)] = p[g * ss] ? 2 : 0;
          }
        for (std::int64_t g = 0; g < gn; ++g) flood_from_border(seen.data() + std::size_t(g) * area, nu, nv, stack);
        for (std::int64_t v = 0; v < nv; ++v)
          for (std::int64_t u = 0; u < nu; ++u) {
            std::uint8_t* p = base + u * su + v * sv;
            for (std::int64_t g = 0; g < gn; ++g)
              if (!seen[std::size_t(g) * area + std::size_t(u + nu * v)]) p[g * ss] = 1;
          }
      }
    });
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
double volume_on_faces_ml(const Mask& mask) {
  std::size_t n = 0;
  mask.grid.for_each_face_voxel([&](std::int64_t i, std::int64_t j, std::int64_t k) { n += mask(i, j, k) ? 1 : 0; });
  return double(n) * mask.grid.voxel_volume_ml();
}

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
  const std::int64_t nx = mask.grid.dim[0];
  for (std::int64_t k = 0; k < mask.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < mask.grid.dim[1]; ++j) {
      const std::uint8_t* row = mask.data.data() + std::size_t(mask.grid.index(0, j, k));
      const std::uint8_t* first = std::find_if(row, row + nx, [](std::uint8_t v) { return v != 0; });
      if (first == row + nx) continue;
      std::int64_t last = nx - 1;
      while (!row[last]) --last;
      lo = {std::min(lo[0], std::int64_t(first - row)), std::min(lo[1], j), std::min(lo[2], k)};
      hi = {std::max(hi[0], last), std::max(hi[1], j), std::max(hi[2], k)};
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

namespace {
void select_ranks(std::vector<float>& v, std::size_t lo, std::size_t hi, const std::vector<std::size_t>& at,
                  std::size_t first, std::size_t last) {
  if (first >= last) return;
  const std::size_t mid = first + (last - first) / 2, k = at[mid];
  std::nth_element(v.begin() + std::ptrdiff_t(lo), v.begin() + std::ptrdiff_t(k), v.begin() + std::ptrdiff_t(hi));
  std::size_t left = mid, right = mid + 1;
  while (left > first && at[left - 1] == k) --left;
  while (right < last && at[right] == k) ++right;
  select_ranks(v, lo, k, at, first, left);
  select_ranks(v, k + 1, hi, at, right, last);
}
}  // namespace

void select_ranks(std::vector<float>& values, const std::vector<std::size_t>& ranks) {
  select_ranks(values, 0, values.size(), ranks, 0, ranks.size());
}

double otsu_threshold(const Image& image, const Mask* mask) {
  // quantile(0.999) and quantile(0) (the minimum, which lies in the part below the first) from one copy.
  std::vector<float> v;
  v.reserve(image.data.size());
  for (std::size_t i = 0; i < image.data.size(); ++i)
    if (!mask || mask->data[i]) v.push_back(image.data[i]);
  if (v.empty()) throw Error("quantile of an empty set");
  const auto top = static_cast<std::ptrdiff_t>(0.999 * double(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + top, v.end());
  const double hi = v[std::size_t(top)], lo = *std::min_element(v.begin(), v.begin() + top + 1);
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
