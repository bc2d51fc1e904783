// Deformable registration subject -> template after the affine stage: brain-masked images on the
// template's pyramid grids (4 -> 2 -> 1 mm), local normalised cross-correlation, greedy compositive
// updates with Gaussian "fluid" smoothing of each update and "diffusion" smoothing of the field
// (the scheme of PICSL greedy / ANTs' greedy SyN without the symmetric half). The forward field u
// lives on the template grid: a template point x corresponds to the subject point A (x + u(x)).
// See docs/cortex-map.md.
#include <Eigen/Dense>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "mni_map_internal.hpp"
#include "pyramid.hpp"
#include "tmsplan/deformable.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/progress.hpp"
#include "tmsplan/provenance.hpp"

namespace tmsplan {
namespace {
using namespace registration_detail;

// Applies a 1D operation along `axis` to a volume with dims d, row-wise: for axis 0 along each
// contiguous line, for axes 1 and 2 a whole x-row at a time (contiguous, vectorisable). `op(rows,
// n, x, out_row)` fills out_row (length d[0]) for output position x along the axis, reading input
// rows through rows(p) (the x-row at position p along the axis, 0 <= p < n).
template <class RowOp>
void along_rows(const std::vector<float>& in, std::vector<float>& out, const std::array<std::int64_t, 3>& d, int axis,
                const RowOp& op) {
  const std::size_t nx = std::size_t(d[0]);
  if (axis == 1) {
    parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
      for (std::int64_t k = k0; k < k1; ++k) {
        const float* plane = in.data() + std::size_t(k) * nx * std::size_t(d[1]);
        auto rows = [&](std::int64_t p) { return plane + std::size_t(p) * nx; };
        for (std::int64_t y = 0; y < d[1]; ++y)
          op(rows, d[1], y, out.data() + (std::size_t(k) * std::size_t(d[1]) + std::size_t(y)) * nx);
      }
    });
  } else {
    parallel_for(d[1], [&](std::int64_t j0, std::int64_t j1) {
      for (std::int64_t j = j0; j < j1; ++j) {
        auto rows = [&](std::int64_t p) {
          return in.data() + (std::size_t(p) * std::size_t(d[1]) + std::size_t(j)) * nx;
        };
        for (std::int64_t z = 0; z < d[2]; ++z)
          op(rows, d[2], z, out.data() + (std::size_t(z) * std::size_t(d[1]) + std::size_t(j)) * nx);
      }
    });
  }
}

// Sums over a (2r+1)^3 box around every voxel (the box clipped at the borders).
std::vector<float> box_sum(const std::vector<float>& in, const std::array<std::int64_t, 3>& d, int r) {
  std::vector<float> a(in.size()), b(in.size());
  const std::size_t nx = std::size_t(d[0]);
  // Axis 0: running sums along contiguous lines.
  parallel_for(d[1] * d[2], [&](std::int64_t l0, std::int64_t l1) {
    for (std::int64_t l = l0; l < l1; ++l) {
      const float* src = in.data() + std::size_t(l) * nx;
      float* dst = a.data() + std::size_t(l) * nx;
      double run = 0.0;
      const std::int64_t n = d[0];
      for (std::int64_t x = 0; x < std::min<std::int64_t>(r, n); ++x) run += src[x];
      for (std::int64_t x = 0; x < n; ++x) {
        if (x + r < n) run += src[x + r];
        if (x - r - 1 >= 0) run -= src[x - r - 1];
        dst[x] = static_cast<float>(run);
      }
    }
  });
  // Axes 1 and 2: direct sums of whole rows (r is small).
  auto box_rows = [&](const auto& rows, std::int64_t n, std::int64_t x, float* dst) {
    std::fill(dst, dst + nx, 0.0f);
    for (std::int64_t p = std::max<std::int64_t>(0, x - r); p <= std::min<std::int64_t>(n - 1, x + r); ++p) {
      const float* row = rows(p);
      for (std::size_t i = 0; i < nx; ++i) dst[i] += row[i];
    }
  };
  along_rows(a, b, d, 1, box_rows);
  along_rows(b, a, d, 2, box_rows);
  return a;
}

// A vector field on one level grid, three planar components in world mm.
struct Field {
  std::array<Image, 3> c;
  explicit Field(const Grid& g) : c{Image(g, 0.0f), Image(g, 0.0f), Image(g, 0.0f)} {}
};

struct LevelGeometry {
  Grid grid;
  Eigen::Matrix3d w2v;  // world vector -> voxel vector (linear part of ras2vox)
  Eigen::Matrix3d v2w;
  explicit LevelGeometry(const Grid& g) : grid(g) {
    v2w = g.vox2ras.m.topLeftCorner<3, 3>();
    w2v = v2w.inverse();
  }
};

// m(x + u(x)) for every voxel x (moving image on the same grid).
Image warp_image(const Image& moving, const Field& u, const LevelGeometry& geo) {
  Image out(geo.grid, 0.0f);
  const auto& d = geo.grid.dim;
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t n = geo.grid.index(i, j, k);
          const Eigen::Vector3d v = Eigen::Vector3d(double(i), double(j), double(k)) +
                                    geo.w2v * Eigen::Vector3d(u.c[0].data[n], u.c[1].data[n], u.c[2].data[n]);
          out.data[n] = static_cast<float>(
              trilinear_value(moving.data.data(), trilinear_stencil(d, v[0], v[1], v[2], Edge::Zero)));
        }
  });
  return out;
}

// u(x) <- delta(x) + u(x + delta(x)): the map x -> x + u(x) composed after the small update.
// Beyond the grid the field continues with its edge value (clamped), not zero.
void compose(Field& u, const Field& delta, const LevelGeometry& geo) {
  Field out(geo.grid);
  const auto& d = geo.grid.dim;
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t n = geo.grid.index(i, j, k);
          const Eigen::Vector3d dn(delta.c[0].data[n], delta.c[1].data[n], delta.c[2].data[n]);
          const Eigen::Vector3d v = Eigen::Vector3d(double(i), double(j), double(k)) + geo.w2v * dn;
          const Trilinear t = trilinear_stencil(d, v[0], v[1], v[2], Edge::Clamp);
          for (int a = 0; a < 3; ++a)
            out.c[a].data[n] = static_cast<float>(dn[a] + trilinear_value(u.c[a].data.data(), t));
        }
  });
  u = std::move(out);
}

// Gaussian smoothing of the three components, sigma in voxels, the edge values continued beyond
// the grid (filters' separable Gaussian in single precision: it runs twice per iteration).
void smooth_field(Field& f, double sigma_vox) {
  for (auto& comp : f.c) gaussian_smooth_voxels(comp, Eigen::Vector3d::Constant(sigma_vox), Precision::Single);
}

// NCC of two images over the voxels of `mask` (same grid).
double masked_ncc(const Image& a, const Image& b, const Mask& mask) {
  double n = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i)
    if (mask.data[i]) {
      const double x = a.data[i], y = b.data[i];
      n += 1, sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
    }
  if (n < 2) return 0.0;
  const double va = saa / n - (sa / n) * (sa / n), vb = sbb / n - (sb / n) * (sb / n);
  if (!(va > 0 && vb > 0)) return 0.0;
  return (sab / n - (sa / n) * (sb / n)) / std::sqrt(va * vb);
}

// Image times mask, divided by its 99.5th percentile inside the mask and clipped there, so both
// images have the same scale and bright vessels or fat do not dominate.
Image masked_normalised(const Image& image, const Mask& mask) {
  std::vector<float> inside;
  const std::size_t stride = std::max<std::size_t>(1, image.data.size() / 2000000);
  for (std::size_t i = 0; i < image.data.size(); i += stride)
    if (mask.data[i] && std::isfinite(image.data[i])) inside.push_back(image.data[i]);
  const float top = quantile(inside, 0.995);
  if (!(top > 0.0f)) throw Error("registration: the image is dark inside its brain mask");
  Image out(image.grid, 0.0f);
  parallel_for(std::int64_t(image.data.size()), [&](std::int64_t b0, std::int64_t b1) {
    for (std::size_t i = std::size_t(b0); i < std::size_t(b1); ++i)
      if (mask.data[i] && std::isfinite(image.data[i])) out.data[i] = std::clamp(image.data[i] / top, 0.0f, 1.0f);
  });
  return out;
}

// A field on another grid of the same space (trilinear; edge value beyond the source grid).
Field resample_field(const Field& f, const Grid& grid) {
  Field out(grid);
  const Eigen::Matrix4d m = f.c[0].grid.vox2ras.m.inverse() * grid.vox2ras.m;  // target voxel -> source voxel
  const auto& ds = f.c[0].grid.dim;
  const auto& d = grid.dim;
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const Eigen::Vector3d v =
              m.topLeftCorner<3, 3>() * Eigen::Vector3d(double(i), double(j), double(k)) + m.topRightCorner<3, 1>();
          const Trilinear t = trilinear_stencil(ds, v[0], v[1], v[2], Edge::Clamp);
          const std::size_t n = grid.index(i, j, k);
          for (int a = 0; a < 3; ++a) out.c[a].data[n] = static_cast<float>(trilinear_value(f.c[a].data.data(), t));
        }
  });
  return out;
}

// Smallest Jacobian determinant of x -> x + u(x) inside `mask` (central differences).
double min_jacobian(const Field& u, const LevelGeometry& geo, const Mask& mask) {
  const auto& d = geo.grid.dim;
  std::vector<double> per_slice(std::size_t(d[2]), 1e9);
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = std::max<std::int64_t>(k0, 1); k < std::min(k1, d[2] - 1); ++k)
      for (std::int64_t j = 1; j < d[1] - 1; ++j)
        for (std::int64_t i = 1; i < d[0] - 1; ++i) {
          if (!mask(i, j, k)) continue;
          Eigen::Matrix3d g;  // d u_a / d voxel_b
          const std::int64_t step[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
          for (int b = 0; b < 3; ++b)
            for (int a = 0; a < 3; ++a)
              g(a, b) = 0.5 * (u.c[a](i + step[b][0], j + step[b][1], k + step[b][2]) -
                               u.c[a](i - step[b][0], j - step[b][1], k - step[b][2]));
          const Eigen::Matrix3d jac = Eigen::Matrix3d::Identity() + g * geo.w2v;
          per_slice[std::size_t(k)] = std::min(per_slice[std::size_t(k)], jac.determinant());
        }
  });
  return *std::min_element(per_slice.begin(), per_slice.end());
}

constexpr double kBorderTaperMm = 12.0;

// Fades the field to zero towards the faces of its grid, so that the map is continuous where the
// field ends (beyond the grid: affine only). Each face's ramp is `width_mm` wide, or narrower where
// `keep` (the template brain) comes closer to that face: the ramp ends before the brain, which
// keeps its whole field (Colin27's brainstem and cerebellum reach 4 mm from the template grid's
// bottom face; a 12 mm ramp there scaled their displacement down to 0.6 of it, the worst
// known-answer points). Only background is touched.
void taper_to_border(DisplacementField& f, double width_mm, const Mask& keep) {
  const Grid& g = f.grid;
  const Eigen::Vector3d h = g.spacing_mm();
  std::array<std::int64_t, 3> lo{g.dim[0], g.dim[1], g.dim[2]}, hi{-1, -1, -1};
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i)
        if (keep(i, j, k))
          lo = {std::min(lo[0], i), std::min(lo[1], j), std::min(lo[2], k)},
          hi = {std::max(hi[0], i), std::max(hi[1], j), std::max(hi[2], k)};
  std::array<std::vector<float>, 3> ramp;
  for (int a = 0; a < 3; ++a) {
    const std::size_t sa = std::size_t(a);
    // Ramp widths at the low and high faces (mm): at most the distance to the kept voxels.
    const double w_lo = std::min(width_mm, double(lo[sa]) * h[a]);
    const double w_hi = std::min(width_mm, double(g.dim[a] - 1 - hi[sa]) * h[a]);
    ramp[sa].resize(std::size_t(g.dim[a]));
    for (std::int64_t i = 0; i < g.dim[a]; ++i) {
      // A smooth step over the full width; a linear ramp (slope 1 / w, the gentlest that ends
      // before the brain) where the brain is closer: it folds only where the field points at the
      // face by more than w (Philips, bottom face: w = 4 mm, |u| <= 3.3 mm, Jacobian >= 0.15; a
      // 4 mm smooth step folded 43 voxels there).
      auto step = [width_mm](double edge_mm, double w) {
        const double t = w > 0.0 ? std::clamp(edge_mm / w, 0.0, 1.0) : 1.0;
        return w < width_mm ? t : t * t * (3.0 - 2.0 * t);
      };
      ramp[sa][std::size_t(i)] =
          static_cast<float>(std::min(step(double(i) * h[a], w_lo), step(double(g.dim[a] - 1 - i) * h[a], w_hi)));
    }
  }
  parallel_for(g.dim[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < g.dim[1]; ++j)
        for (std::int64_t i = 0; i < g.dim[0]; ++i) {
          const float w = ramp[0][std::size_t(i)] * ramp[1][std::size_t(j)] * ramp[2][std::size_t(k)];
          if (w == 1.0f) continue;
          const std::size_t n = g.index(i, j, k);
          for (auto& c : f.d) c[n] *= w;
        }
  });
}

// The sub-block of `image` holding every voxel of `mask` plus `margin_mm` (clamped to the grid): the
// level grids of the deformable stage cover the template's brain region, not the whole head field.
template <class T> Volume<T> crop_to_mask(const Volume<T>& image, const Mask& mask, double margin_mm) {
  const auto& d = mask.grid.dim;
  std::array<std::int64_t, 3> lo{d[0], d[1], d[2]}, hi{-1, -1, -1};
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (mask(i, j, k)) {
          lo = {std::min(lo[0], i), std::min(lo[1], j), std::min(lo[2], k)};
          hi = {std::max(hi[0], i), std::max(hi[1], j), std::max(hi[2], k)};
        }
  const Eigen::Vector3d h = mask.grid.spacing_mm();
  Grid g;
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    const auto m = static_cast<std::int64_t>(std::ceil(margin_mm / h[a]));
    lo[std::size_t(a)] = std::max<std::int64_t>(0, lo[std::size_t(a)] - m);
    hi[std::size_t(a)] = std::min<std::int64_t>(d[a] - 1, hi[std::size_t(a)] + m);
    g.dim[std::size_t(a)] = hi[std::size_t(a)] - lo[std::size_t(a)] + 1;
    shift(a, 3) = double(lo[std::size_t(a)]);
  }
  g.vox2ras = RasMatrix(mask.grid.vox2ras.m * shift);
  Volume<T> out(g);
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) out(i, j, k) = image(i + lo[0], j + lo[1], k + lo[2]);
  return out;
}

// One level's inputs, all on the level grid: the template (fixed) and the affinely placed subject
// (moving), both brain-masked and normalised; the region the NCC sees; and, when the mask channel
// is on, the two smoothed brain masks (template's and subject's, values in [0, 1]).
struct LevelImages {
  Image fixed, moving;
  Mask region;
  Image fixed_mask, moving_mask;  // empty grids when the mask channel is off
  bool has_masks() const { return !moving_mask.data.empty(); }
};

// Central-difference voxel gradient of `w` at (i, j, k), the border value continued.
Eigen::Vector3d voxel_gradient(const Image& w, std::int64_t i, std::int64_t j, std::int64_t k) {
  const auto& d = w.grid.dim;
  auto at = [&](std::int64_t a, std::int64_t b, std::int64_t c) {
    return w(std::clamp<std::int64_t>(a, 0, d[0] - 1), std::clamp<std::int64_t>(b, 0, d[1] - 1),
             std::clamp<std::int64_t>(c, 0, d[2] - 1));
  };
  return {0.5 * (at(i + 1, j, k) - at(i - 1, j, k)), 0.5 * (at(i, j + 1, k) - at(i, j - 1, k)),
          0.5 * (at(i, j, k + 1) - at(i, j, k - 1))};
}

// Window statistics of the fixed image (box sums of f and f^2), which do not change in a level.
struct FixedWindows {
  std::vector<float> sf, sff;
};

// Box sums of f and f^2 (the window statistics of the fixed image).
FixedWindows fixed_windows(const Image& f, int r) {
  std::vector<float> f2(f.data.size());
  for (std::size_t i = 0; i < f2.size(); ++i) f2[i] = f.data[i] * f.data[i];
  return {box_sum(f.data, f.grid.dim, r), box_sum(f2, f.grid.dim, r)};
}

// The local-NCC force (ANTs' window-centre CC derivative times the warped subject's gradient, world
// mm) inside `region`, for the fixed image `f` (window sums fx) and the warped subject `w`.
Field ncc_force(const Image& f, const Mask& region, const FixedWindows& fx, const Image& w, const LevelGeometry& geo,
                int r) {
  const auto& d = geo.grid.dim;
  const std::size_t n = geo.grid.voxels();
  const double count = std::pow(2.0 * r + 1.0, 3);
  // The warped subject is seen only inside the template's region (as the template is), so the
  // region's edge is the same in both images and drives nothing; the gradient is the subject's own.
  std::vector<float> w2(n), fw(n), wm(n);
  parallel_for(std::int64_t(n), [&](std::int64_t b0, std::int64_t b1) {
    for (std::size_t i = std::size_t(b0); i < std::size_t(b1); ++i) {
      wm[i] = region.data[i] ? w.data[i] : 0.0f;
      w2[i] = wm[i] * wm[i], fw[i] = f.data[i] * wm[i];
    }
  });
  const std::vector<float> sw = box_sum(wm, d, r), sww = box_sum(w2, d, r), sfw = box_sum(fw, d, r);
  const Eigen::Matrix3d grad_to_world = geo.w2v.transpose();
  Field g(geo.grid);
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t q = geo.grid.index(i, j, k);
          if (!region.data[q]) continue;
          const double mf = fx.sf[q] / count, mw = sw[q] / count;
          const double vff = fx.sff[q] - count * mf * mf, vww = sww[q] - count * mw * mw;
          const double vfw = sfw[q] - count * mf * mw;
          if (!(vff > 1e-5 && vww > 1e-5)) continue;
          // d CC / d w at the window centre (ANTs' approximation), CC = vfw^2 / (vff vww).
          const double dcc = 2.0 * vfw / (vff * vww) * ((f.data[q] - mf) - vfw / vww * (wm[q] - mw));
          const Eigen::Vector3d force = dcc * (grad_to_world * voxel_gradient(w, i, j, k));
          for (int a = 0; a < 3; ++a) g.c[a].data[q] = static_cast<float>(force[a]);
        }
  });
  return g;
}

// 99th percentile of the nonzero vector lengths of a field (serial: deterministic).
double p99_length(const Field& g) {
  std::vector<float> norms;
  norms.reserve(g.c[0].data.size() / 4);
  for (std::size_t i = 0; i < g.c[0].data.size(); ++i) {
    const double len = std::sqrt(double(g.c[0].data[i]) * g.c[0].data[i] + double(g.c[1].data[i]) * g.c[1].data[i] +
                                 double(g.c[2].data[i]) * g.c[2].data[i]);
    if (len > 0) norms.push_back(float(len));
  }
  return norms.empty() ? 0.0 : double(quantile(norms, 0.99));
}

// Adds the mask channel's force, gain * (Mt - Ms(x + u)) * grad Ms(x + u) (the descent of the
// squared mask difference), everywhere on the grid: it pulls the subject's brain edge onto the
// template's.
void add_mask_force(Field& g, const LevelImages& in, const Image& wmask, const LevelGeometry& geo, double gain) {
  const auto& d = geo.grid.dim;
  const Eigen::Matrix3d grad_to_world = geo.w2v.transpose();
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t q = geo.grid.index(i, j, k);
          const double diff = double(in.fixed_mask.data[q]) - double(wmask.data[q]);
          if (diff == 0.0) continue;
          const Eigen::Vector3d force = gain * diff * (grad_to_world * voxel_gradient(wmask, i, j, k));
          for (int a = 0; a < 3; ++a) g.c[a].data[q] += static_cast<float>(force[a]);
        }
  });
}

// Largest gradient length (per voxel) of a unit step smoothed with a Gaussian of sigma 1 voxel:
// 1 / sqrt(2 pi). The mask force is scaled by it so that its weight reads as "a full mask edge
// mismatch pushes as hard as the 99th percentile of the NCC force".
constexpr double kUnitEdgeGradient = 0.3989;

// Scales a smoothed force into an update: the first iteration of a level (`scale` == 0) sets the
// scale so that the 99th percentile of the update length is max_step_mm; later updates keep that
// scale (so they shrink as the images match) and are clipped at max_step_mm. False when the force
// is zero at the first iteration (nothing to match).
bool force_to_update(Field& g, double& scale, double max_step_mm) {
  if (scale == 0.0) {
    const double p99 = p99_length(g);
    if (!(p99 > 0)) return false;
    scale = max_step_mm / p99;
  }
  const std::int64_t n = std::int64_t(g.c[0].data.size());
  parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      Eigen::Vector3d v(g.c[0].data[std::size_t(i)], g.c[1].data[std::size_t(i)], g.c[2].data[std::size_t(i)]);
      v *= scale;
      const double len = v.norm();
      if (len > max_step_mm) v *= max_step_mm / len;
      for (int a = 0; a < 3; ++a) g.c[a].data[std::size_t(i)] = static_cast<float>(v[a]);
    }
  });
  return true;
}

// Greedy iterations on one level (local NCC, plus the mask channel when it is on); u is updated in
// place.
void run_level(const LevelImages& in, Field& u, const LevelGeometry& geo, const DeformableOptions& options,
               int iterations, double spacing_mm) {
  const int r = options.ncc_radius_vox;
  const FixedWindows fx = fixed_windows(in.fixed, r);
  const double max_step_mm = options.step_vox * spacing_mm;
  const double sigma_update_vox = std::max(options.sigma_update_vox, options.min_sigma_update_mm / spacing_mm);
  double scale = 0.0, mask_gain = 0.0;
  for (int it = 0; it < iterations; ++it) {
    const Image w = warp_image(in.moving, u, geo);
    Field g = ncc_force(in.fixed, in.region, fx, w, geo, r);
    if (in.has_masks()) {
      // The gain is set at the first iteration of the level from the NCC force and then kept.
      if (it == 0)
        mask_gain = options.mask_weight * p99_length(g) * spacing_mm * options.mask_sigma_vox / kUnitEdgeGradient;
      add_mask_force(g, in, warp_image(in.moving_mask, u, geo), geo, mask_gain);
    }
    smooth_field(g, sigma_update_vox);
    if (!force_to_update(g, scale, max_step_mm)) return;
    compose(u, g, geo);
    smooth_field(u, options.sigma_field_vox);
  }
}

// What every level is made from: the brain-masked, normalised template (on its cropped grid) and
// region; the subject blurred in its own space and placed by the affine on the finest level grid;
// and, for the mask channel, the template's brain mask (cropped) and the subject's brain mask on the
// finest level grid (blurred like the subject).
struct LevelSource {
  double finest = 0.0;
  Image template_masked, subject_blur, fixed_fine, moving_fine;
  Mask template_region;
  Image template_brain, moving_mask_fine;  // empty when the mask channel is off
};

LevelSource level_source(const Image& subject, const Mask& subject_brain, const Image& templ,
                         const Mask& template_brain, const Eigen::Matrix4d& A, const DeformableOptions& options) {
  // Brain-masked images: each mask grown by a margin (chessboard, in voxels of the finest axis).
  auto grown = [&](const Mask& m, double margin_mm) {
    return dilate_box(m, static_cast<int>(std::ceil(margin_mm / m.grid.spacing_mm().minCoeff())));
  };
  LevelSource src;
  const Mask template_region_full = grown(template_brain, options.mask_margin_mm);
  // Level grids cover the template region plus a margin only (the head field around it is
  // background for the fit); beyond them the field continues with its edge value.
  src.template_region = crop_to_mask(template_region_full, template_region_full, options.crop_margin_mm);
  src.template_masked =
      masked_normalised(crop_to_mask(templ, template_region_full, options.crop_margin_mm), src.template_region);
  // The subject is blurred once in its own space for the finest level and brought onto the
  // template's finest level grid by the affine; coarser levels blur that copy further.
  src.finest = options.levels_mm.back();
  src.subject_blur =
      gaussian_smooth(masked_normalised(subject, grown(subject_brain, options.subject_margin_mm)), 0.5 * src.finest);
  src.fixed_fine = downsample(src.template_masked, src.finest, 0.5 * src.finest);
  src.moving_fine = resample_affine(src.subject_blur, src.fixed_fine.grid, A, Interp::Linear);
  if (options.mask_weight > 0.0) {
    const Mask& channel = options.mask_channel_template ? *options.mask_channel_template : template_brain;
    if (!channel.grid.same_as(templ.grid))
      throw Error("registration: the mask channel's template mask does not lie on the template's grid");
    src.template_brain = to_image(crop_to_mask(channel, template_region_full, options.crop_margin_mm));
    src.moving_mask_fine = resample_affine(gaussian_smooth(to_image(subject_brain), 0.5 * src.finest),
                                           src.fixed_fine.grid, A, Interp::Linear);
  }
  return src;
}

// The images of the level with spacing s (mm): the finest level's are the source's; coarser ones
// are blurred further and resampled. The masks are blurred to mask_sigma_vox voxels of the level.
LevelImages level_images(const LevelSource& src, double s, const DeformableOptions& options) {
  const bool is_fine = s == src.finest;
  LevelImages in;
  in.fixed = is_fine ? src.fixed_fine : downsample(src.template_masked, s, 0.5 * s);
  const Grid& grid = in.fixed.grid;
  auto coarser = [&](const Image& fine, double sigma_mm) {
    return resample_affine(sigma_mm > 0.0 ? gaussian_smooth(fine, sigma_mm) : fine, grid, Eigen::Matrix4d::Identity(),
                           Interp::Linear);
  };
  in.moving = is_fine ? src.moving_fine : coarser(src.moving_fine, std::sqrt(0.25 * (s * s - src.finest * src.finest)));
  in.region = threshold(
      resample_affine(to_image(src.template_region), grid, Eigen::Matrix4d::Identity(), Interp::Linear), 0.5f);
  if (!src.moving_mask_fine.data.empty()) {
    const double sigma_mm = options.mask_sigma_vox * s, pre_mm = 0.5 * src.finest;
    in.fixed_mask = downsample(src.template_brain, s, sigma_mm);
    if (!in.fixed_mask.grid.same_as(grid)) throw Error("registration: template mask level off the level grid");
    in.moving_mask = coarser(src.moving_mask_fine, std::sqrt(std::max(0.0, sigma_mm * sigma_mm - pre_mm * pre_mm)));
  }
  return in;
}

}  // namespace

DeformableResult register_deformable(const Image& subject, const Mask& subject_brain, const Image& templ,
                                     const Mask& template_brain, const DeformableOptions& options) {
  if (!subject_brain.grid.same_as(subject.grid))
    throw Error("registration: the subject brain mask does not lie on the subject image's grid");
  if (!template_brain.grid.same_as(templ.grid))
    throw Error("registration: the template brain mask does not lie on the template's grid");
  if (count(subject_brain) == 0) throw Error("registration: the subject brain mask is empty");
  if (count(template_brain) == 0) throw Error("registration: the template brain mask is empty");
  if (options.levels_mm.empty() || options.levels_mm.size() != options.iterations.size())
    throw Error("registration: deformable levels and iteration counts must be given pairwise");
  for (std::size_t l = 0; l < options.levels_mm.size(); ++l)
    if (!(options.levels_mm[l] > 0 && options.levels_mm[l] <= 16) || options.iterations[l] < 0 ||
        (l > 0 && !(options.levels_mm[l] < options.levels_mm[l - 1])))
      throw Error("registration: deformable levels must run coarse to fine within (0, 16] mm");
  if (!(options.min_sigma_update_mm >= 0.0 && options.min_sigma_update_mm <= 20.0))
    throw Error("registration: the smallest update smoothing must be within [0, 20] mm");
  if (options.ncc_radius_vox < 1 || options.ncc_radius_vox > 8)
    throw Error("registration: NCC radius must be 1..8 voxels");
  if (!(options.mask_weight >= 0.0) || !(options.mask_sigma_vox > 0.0 && options.mask_sigma_vox <= 4.0))
    throw Error("registration: mask weight must be >= 0 and mask sigma within (0, 4] voxels");

  DeformableResult result;
  double t0 = now_seconds();
  AffineOptions aff = options.affine;
  aff.template_focus = &template_brain;
  result.affine = register_affine(subject, templ, aff);
  const Eigen::Matrix4d A = result.affine.template_to_subject;
  result.seconds_affine = now_seconds() - t0;
  t0 = now_seconds();

  Progress progress("deformable registration", std::int64_t(options.levels_mm.size()) + 1);
  double tick = now_seconds();
  auto stage = [&](const char* what) {
    const double now = now_seconds();
    log::debug(fmt::format("deformable: {} {:.2f} s", what, now - tick));
    tick = now;
  };
  // The level images live in this block only: they are released before the full-grid field and its
  // inverse are made (the step's peak memory).
  std::unique_ptr<Field> u;
  {
    const LevelSource src = level_source(subject, subject_brain, templ, template_brain, A, options);
    const LevelGeometry geo(src.fixed_fine.grid);
    stage("masked images");

    for (std::size_t l = 0; l < options.levels_mm.size(); ++l) {
      const LevelImages in = level_images(src, options.levels_mm[l], options);
      const LevelGeometry level_geo(in.fixed.grid);
      u = u ? std::make_unique<Field>(resample_field(*u, level_geo.grid)) : std::make_unique<Field>(level_geo.grid);
      stage("level setup");
      run_level(in, *u, level_geo, options, options.iterations[l], options.levels_mm[l]);
      stage("level iterations");
      ++progress;
    }

    // Figures on the finest level: NCC of the brain-masked images over the template brain.
    const Mask brain_level = threshold(
        resample_affine(to_image(template_brain), geo.grid, Eigen::Matrix4d::Identity(), Interp::Linear), 0.5f);
    result.ncc_identity = masked_ncc(
        src.fixed_fine, resample_affine(src.subject_blur, geo.grid, Eigen::Matrix4d::Identity(), Interp::Linear),
        brain_level);
    result.ncc_affine = masked_ncc(src.fixed_fine, src.moving_fine, brain_level);
    result.ncc_deformable = masked_ncc(src.fixed_fine, warp_image(src.moving_fine, *u, geo), brain_level);
    result.min_jacobian = min_jacobian(*u, geo, brain_level);
    stage("figures");
  }

  // The field on the template's own grid, then its inverse on the subject's grid.
  DisplacementField forward;
  forward.grid = templ.grid;
  {
    Field full = resample_field(*u, templ.grid);
    for (int a = 0; a < 3; ++a) forward.d[std::size_t(a)] = std::move(full.c[a].data);
  }
  u.reset();
  taper_to_border(forward, kBorderTaperMm, template_brain);
  result.max_displacement_mm = forward.max_norm_mm();
  stage("full-grid field");
  result.seconds_deformable = now_seconds() - t0;
  t0 = now_seconds();
  DisplacementField inverse = invert_to_subject_grid(A, forward, subject.grid);
  result.seconds_inverse = now_seconds() - t0;
  ++progress;
  result.map = MniMap(A, std::move(forward), std::move(inverse));
  log::debug(fmt::format("deformable: NCC identity {:.4f}, affine {:.4f}, deformable {:.4f}; min Jacobian {:.3f}",
                         result.ncc_identity, result.ncc_affine, result.ncc_deformable, result.min_jacobian));
  return result;
}

}  // namespace tmsplan
