// Tissue classification: EM on a five-class intensity ladder (CSF, CSF/GM, GM, GM/WM, WM) with a
// mean-field MRF prior and a smooth multiplicative bias field. See docs/segment.md.
#include "tmsplan/tissue.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "fast_exp.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/progress.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/resample.hpp"
#include "tmsplan/working_grid.hpp"

namespace tmsplan::tissue {

const std::array<std::string, kClasses>& class_names() {
  static const std::array<std::string, kClasses> names{"csf", "gm", "wm"};
  return names;
}

namespace {

// The ladder: pure classes at even positions, the partial-volume mixture of its two neighbours at
// odd positions.
constexpr int kLadder = 5;
constexpr int kNodes = 7;                 // quadrature nodes over the mixing fraction
constexpr std::int64_t kBlock = 1 << 15;  // fixed reduction blocks: sums do not depend on threads
constexpr double kLog2Pi = 1.8378770664093453;

using Ladder = std::array<float, kLadder>;

// The exponentials go through exp_inplace (fast_exp.hpp: std::exp's bits, vectorised), a batch of
// voxels at a time where they are many.

// Compatibility of neighbouring ladder classes for the MRF: same class 1, ladder neighbours 1/2
// (a mixed voxel sits between its two pure classes), anything further 0.
constexpr float compat(int k, int l) {
  const int d = k > l ? k - l : l - k;
  return d == 0 ? 1.0f : d == 1 ? 0.5f : 0.0f;
}

// The mixtures: CSF/GM and GM/WM on the ladder; CSF/WM only for the wall rule (fold_maps).
constexpr int kMixtures = 3;
constexpr std::array<int, kMixtures> kMixDark{0, 1, 0}, kMixBright{1, 2, 2};
constexpr int kCsfWm = 2;

struct Model {
  std::array<double, kClasses> mu{}, sd{};
  bool pv = true;
  // Single precision copies for the per-voxel work. Node t of mixture p mixes class kMixDark[p]
  // (fraction a_t) with class kMixBright[p]; its variance is the same blend of the two class variances.
  std::array<float, kClasses> fmu{}, ivar{}, lnorm{};
  std::array<std::array<float, kNodes>, kMixtures> node_mean{}, node_ivar{}, node_lnorm{};
  std::array<float, kNodes> node_a{};

  void prepare() {
    for (int c = 0; c < kClasses; ++c) {
      fmu[c] = float(mu[c]);
      ivar[c] = float(1.0 / (sd[c] * sd[c]));
      lnorm[c] = float(-0.5 * kLog2Pi - std::log(sd[c]));
    }
    for (int t = 0; t < kNodes; ++t) node_a[t] = float((t + 0.5) / kNodes);
    for (int p = 0; p < kMixtures; ++p)
      for (int t = 0; t < kNodes; ++t) {
        const int c0 = kMixDark[p], c1 = kMixBright[p];
        const double a = (t + 0.5) / kNodes;
        const double var = a * sd[c0] * sd[c0] + (1 - a) * sd[c1] * sd[c1];
        node_mean[p][t] = float(a * mu[c0] + (1 - a) * mu[c1]);
        node_ivar[p][t] = float(1.0 / var);
        node_lnorm[p][t] = float(-0.5 * kLog2Pi - 0.5 * std::log(var) - std::log(double(kNodes)));
      }
  }
};

// Log-likelihood of intensity x under mixture p (uniform over the fraction, by quadrature), with
// the posterior mean of the darker class's fraction and of its square. In two halves around the
// exponentials: the exponents (node log-likelihood - best, 8 lanes, the last one 0) and best...
constexpr int kLanes = 8;
static_assert(kNodes < kLanes, "the nodes of a mixture fit one block of exponentials");
float mixture_exponents(const Model& m, int p, float x, float* lt) {
  float best = -std::numeric_limits<float>::infinity();
  for (int t = 0; t < kNodes; ++t) {
    const float d = x - m.node_mean[p][t];
    lt[t] = m.node_lnorm[p][t] - 0.5f * d * d * m.node_ivar[p][t];
    best = std::max(best, lt[t]);
  }
  for (int t = 0; t < kNodes; ++t) lt[t] -= best;
  for (int t = kNodes; t < kLanes; ++t) lt[t] = 0.0f;
  return best;
}

// ...and from their exponentials w, the log-likelihood and the fraction's moments.
void mixture_sums(const Model& m, const float* w, float best, float& ll, float& fraction, float& fraction2) {
  float s = 0, sa = 0, saa = 0;
  for (int t = 0; t < kNodes; ++t) {
    s += w[t];
    sa += w[t] * m.node_a[t];
    saa += w[t] * m.node_a[t] * m.node_a[t];
  }
  ll = best + std::log(s);
  fraction = sa / s;
  fraction2 = saa / s;
}

void mixture(const Model& m, int p, float x, float& ll, float& fraction, float& fraction2) {
  std::array<float, kLanes> w;
  const float best = mixture_exponents(m, p, x, w.data());
  exp_inplace(w.data(), w.size());
  mixture_sums(m, w.data(), best, ll, fraction, fraction2);
}

// Log-likelihood of intensity x under each ladder class; for the mixtures also the posterior mean
// fraction of the darker class and of its square.
struct Eval {
  Ladder ll;
  std::array<float, 2> fraction;
  std::array<float, 2> fraction2;  // posterior mean of the squared fraction
};

// evaluate() on count <= kBatch intensities, their exponentials in one go.
constexpr int kBatch = 32;
void evaluate_batch(const Model& m, const float* x, int count, Eval* e) {
  std::array<float, kBatch * 2 * kLanes> w;
  std::array<float, kBatch * 2> best;
  for (int j = 0; j < count; ++j) {
    for (int c = 0; c < kClasses; ++c) {
      const float d = x[j] - m.fmu[c];
      e[j].ll[2 * c] = m.lnorm[c] - 0.5f * d * d * m.ivar[c];
    }
    if (m.pv)
      for (int p = 0; p < 2; ++p)
        best[std::size_t(2 * j + p)] = mixture_exponents(m, p, x[j], &w[std::size_t((2 * j + p) * kLanes)]);
  }
  if (m.pv) exp_inplace(w.data(), std::size_t(count * 2 * kLanes));
  for (int j = 0; j < count; ++j)
    for (int p = 0; p < 2; ++p) {
      if (!m.pv) {
        e[j].ll[2 * p + 1] = -std::numeric_limits<float>::infinity();
        e[j].fraction[p] = 0.5f;
        e[j].fraction2[p] = 0.25f;
        continue;
      }
      mixture_sums(m, &w[std::size_t((2 * j + p) * kLanes)], best[std::size_t(2 * j + p)], e[j].ll[2 * p + 1],
                   e[j].fraction[p], e[j].fraction2[p]);
    }
}

void evaluate(const Model& m, float x, Eval& e) { evaluate_batch(m, &x, 1, &e); }

// Sums per-block partial results in block order, so a reduction gives the same bits on any
// number of threads.
template <std::size_t N, class F> std::array<double, N> reduce(std::int64_t n, F&& body) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<std::array<double, N>> parts(static_cast<std::size_t>(blocks));
  parallel_for(blocks, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      std::array<double, N> acc{};
      body(b * kBlock, std::min(n, (b + 1) * kBlock), acc);
      parts[static_cast<std::size_t>(b)] = acc;
    }
  });
  std::array<double, N> total{};
  for (const auto& p : parts)
    for (std::size_t i = 0; i < N; ++i) total[i] += p[i];
  return total;
}

// The voxels inside the mask as a compact list with their face neighbours.
struct Voxels {
  std::int64_t n = 0;
  std::vector<std::size_t> index;  // into the grid
  std::vector<std::array<std::int32_t, 3>> ijk;
  std::vector<float> y;                 // input intensity
  std::vector<std::int32_t> neighbour;  // 6 per voxel, -1 outside the mask
  std::vector<std::uint8_t> parity;     // (i + j + k) % 2 in the full grid, for red-black mean-field sweeps
  std::array<double, 3> axis_weight{};  // MRF weight of a neighbour along each axis (1/mm)
  // ijk are in a box of the full grid (the mask's bounding box) starting at this voxel: parity and
  // the bias cells are those of the full grid, so the box changes no bit of the result.
  std::array<std::int64_t, 3> origin{};
  Volume<std::int32_t> where;  // voxel number at each grid voxel of the box, -1 outside the mask
};

Voxels gather(const Image& t1, const Mask& mask, const std::array<std::int64_t, 3>& origin) {
  const Grid& g = t1.grid;
  Voxels v;
  v.origin = origin;
  const std::int64_t parity0 = origin[0] + origin[1] + origin[2];
  v.where = Volume<std::int32_t>(g, -1);
  Volume<std::int32_t>& where = v.where;
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) {
        const std::size_t at = g.index(i, j, k);
        if (!mask.data[at]) continue;
        where.data[at] = static_cast<std::int32_t>(v.index.size());
        v.index.push_back(at);
        v.ijk.push_back({std::int32_t(i), std::int32_t(j), std::int32_t(k)});
        v.y.push_back(std::max(0.0f, t1.data[at]));
        v.parity.push_back(std::uint8_t((parity0 + i + j + k) & 1));
      }
  v.n = static_cast<std::int64_t>(v.index.size());
  v.neighbour.assign(std::size_t(v.n) * 6, -1);
  parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t n = b; n < e; ++n) {
      const auto& p = v.ijk[std::size_t(n)];
      for (int a = 0; a < 3; ++a)
        for (int s = 0; s < 2; ++s) {
          std::array<std::int64_t, 3> q{p[0], p[1], p[2]};
          q[a] += s ? 1 : -1;
          if (g.inside(q[0], q[1], q[2]))
            v.neighbour[std::size_t(n) * 6 + std::size_t(2 * a + s)] = where(q[0], q[1], q[2]);
        }
    }
  });
  const Eigen::Vector3d sp = g.spacing_mm();
  for (int a = 0; a < 3; ++a) v.axis_weight[a] = 1.0 / sp[a];
  return v;
}

// Initial class means and spreads: 1D k-means (3 clusters) on a histogram of the intensities,
// started at these quantiles, over the 0.5-99.5 % range.
constexpr std::array<double, 3> kStartQuantiles{0.15, 0.5, 0.85};
constexpr double kHistogramLo = 0.005, kHistogramHi = 0.995;
constexpr int kHistogramBins = 1024;
constexpr int kKmeansIterations = 100;
constexpr double kMinInitialSdOfContrast = 0.02;  // initial class sd floor (fraction of WM - CSF)

Model initial_model(const Voxels& v) {
  // The quantiles below as a full sort gives them (order statistics are unique values).
  std::vector<float> sorted = v.y;
  std::vector<std::size_t> at;
  for (double q : {kHistogramLo, kStartQuantiles[0], kStartQuantiles[1], kStartQuantiles[2], kHistogramHi})
    at.push_back(std::size_t(q * double(sorted.size() - 1)));
  select_ranks(sorted, at);
  auto quantile = [&](double q) { return double(sorted[std::size_t(q * double(sorted.size() - 1))]); };
  const double lo = quantile(kHistogramLo), hi = quantile(kHistogramHi);
  if (!(hi > lo)) throw Error("the T1 has (almost) the same intensity everywhere inside the mask");
  std::vector<double> count(kHistogramBins, 0.0);
  const double width = (hi - lo) / kHistogramBins;
  for (float y : v.y) {
    const int b = std::clamp(int((y - lo) / width), 0, kHistogramBins - 1);
    count[std::size_t(b)] += 1;
  }
  auto centre = [&](int b) { return lo + (b + 0.5) * width; };
  std::array<double, 3> mu{quantile(kStartQuantiles[0]), quantile(kStartQuantiles[1]), quantile(kStartQuantiles[2])};
  std::array<double, 3> sum{}, sum2{}, w{};
  for (int it = 0; it < kKmeansIterations; ++it) {
    sum = {}, sum2 = {}, w = {};
    for (int b = 0; b < kHistogramBins; ++b) {
      const double x = centre(b);
      int best = 0;
      for (int c = 1; c < 3; ++c)
        if (std::abs(x - mu[c]) < std::abs(x - mu[best])) best = c;
      sum[best] += count[b] * x;
      sum2[best] += count[b] * x * x;
      w[best] += count[b];
    }
    std::array<double, 3> next = mu;
    for (int c = 0; c < 3; ++c)
      if (w[c] > 0) next[c] = sum[c] / w[c];
    if (next == mu) break;
    mu = next;
  }
  Model m;
  const double contrast = mu[2] - mu[0];
  if (!(mu[0] < mu[1] && mu[1] < mu[2]) || !(contrast > 0))
    throw Error("cannot split the intensities inside the mask into CSF, GM and WM (is it a T1?)");
  for (int c = 0; c < 3; ++c) {
    m.mu[c] = mu[c];
    const double var = w[c] > 0 ? sum2[c] / w[c] - mu[c] * mu[c] : 0.0;
    m.sd[c] = std::max(std::sqrt(std::max(var, 0.0)), kMinInitialSdOfContrast * contrast);
  }
  return m;
}

// The smooth (log) bias field, estimated on a coarse grid of cells (of the full grid `fine`) and
// interpolated to voxels.
class BiasGrid {
 public:
  BiasGrid(const Grid& fine, const Voxels& v, double cell_mm) : v_(v) {
    const Eigen::Vector3d sp = fine.spacing_mm();
    Eigen::Matrix4d scale = Eigen::Matrix4d::Identity();
    for (int a = 0; a < 3; ++a) {
      step_[a] = std::max<std::int64_t>(1, std::lround(cell_mm / sp[a]));
      coarse_.dim[a] = (fine.dim[a] + step_[a] - 1) / step_[a];
      scale(a, a) = double(step_[a]);
      scale(a, 3) = 0.5 * double(step_[a] - 1);
    }
    coarse_.vox2ras = RasMatrix(fine.vox2ras.m * scale);
    // Coarse coordinates of each voxel (fixed): its cell, and its trilinear stencil, computed once
    // (the fractions of a float coordinate are exact in float).
    cell_.resize(std::size_t(v.n));
    stencil_.resize(std::size_t(v.n));
    // Per fixed block of voxels the coordinates' range (min and max: exact in any order).
    const std::int64_t blocks = (v.n + kBlock - 1) / kBlock;
    std::vector<std::array<double, 6>> range(static_cast<std::size_t>(blocks));
    parallel_for(blocks, [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t b = b0; b < b1; ++b) {
        std::array<double, 6>& r = range[std::size_t(b)];
        for (int a = 0; a < 3; ++a) {
          r[std::size_t(a)] = std::numeric_limits<double>::infinity();
          r[std::size_t(a + 3)] = -std::numeric_limits<double>::infinity();
        }
        for (std::int64_t n = b * kBlock; n < std::min(v.n, (b + 1) * kBlock); ++n) place(v, n, r);
      }
    });
    std::array<double, 3> lo, hi;
    lo.fill(std::numeric_limits<double>::infinity());
    hi.fill(-std::numeric_limits<double>::infinity());
    for (const auto& r : range)
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::min(lo[a], r[std::size_t(a)]);
        hi[a] = std::max(hi[a], r[std::size_t(a + 3)]);
      }
    for (int a = 0; a < 3; ++a) {
      mid_[a] = 0.5 * (lo[a] + hi[a]);
      half_[a] = std::max(0.5 * (hi[a] - lo[a]), 1.0);
    }
    // The voxels come in slice order, so those of one slab of cells (one coarse z) are a run.
    slab_start_.assign(std::size_t(coarse_.dim[2] + 1), v.n);
    for (std::int64_t n = v.n - 1; n >= 0; --n)
      slab_start_[std::size_t((v.ijk[std::size_t(n)][2] + v.origin[2]) / step_[2])] = n;
    for (std::int64_t z = coarse_.dim[2] - 1; z >= 0; --z)
      slab_start_[std::size_t(z)] = std::min(slab_start_[std::size_t(z)], slab_start_[std::size_t(z + 1)]);
  }

  // log_b = polynomial fitted to the weighted residual + smooth(w * rest) / smooth(w), re-centred
  // to mean 0 over the mask. The polynomial carries the large-scale field without the flattening
  // that normalised smoothing has near the edge of the mask.
  void estimate(const std::vector<float>& weight, const std::vector<float>& residual, int degree, double sigma_mm,
                std::vector<float>& log_b) const {
    const std::size_t cells = coarse_.voxels();
    std::vector<double> w(cells, 0.0), wr(cells, 0.0);
    // A cell's voxels all lie in its slab, so whole slabs per thread keep each cell's summation
    // order (voxel order), whatever the number of threads.
    parallel_for(coarse_.dim[2], [&](std::int64_t z0, std::int64_t z1) {
      for (std::int64_t n = slab_start_[std::size_t(z0)]; n < slab_start_[std::size_t(z1)]; ++n) {
        const std::size_t c = cell_[std::size_t(n)];
        w[c] += weight[std::size_t(n)];
        wr[c] += double(weight[std::size_t(n)]) * residual[std::size_t(n)];
      }
    });
    Image field(coarse_, 0.0f);
    if (degree >= 0) {
      std::vector<std::array<int, 3>> powers;
      for (int i = 0; i <= degree; ++i)
        for (int j = 0; i + j <= degree; ++j)
          for (int k = 0; i + j + k <= degree; ++k) powers.push_back({i, j, k});
      const int terms = int(powers.size());
      auto basis = [&](std::int64_t i, std::int64_t j, std::int64_t k, Eigen::VectorXd& out) {
        const std::array<double, 3> u{(double(i) - mid_[0]) / half_[0], (double(j) - mid_[1]) / half_[1],
                                      (double(k) - mid_[2]) / half_[2]};
        std::array<std::array<double, 8>, 3> pw;
        for (int a = 0; a < 3; ++a) {
          pw[a][0] = 1;
          for (int e = 1; e <= degree; ++e) pw[a][e] = pw[a][e - 1] * u[a];
        }
        for (int t = 0; t < terms; ++t) out[t] = pw[0][powers[t][0]] * pw[1][powers[t][1]] * pw[2][powers[t][2]];
      };
      Eigen::MatrixXd normal = Eigen::MatrixXd::Zero(terms, terms);
      Eigen::VectorXd rhs = Eigen::VectorXd::Zero(terms), b(terms);
      for (std::int64_t k = 0; k < coarse_.dim[2]; ++k)
        for (std::int64_t j = 0; j < coarse_.dim[1]; ++j)
          for (std::int64_t i = 0; i < coarse_.dim[0]; ++i) {
            const std::size_t c = coarse_.index(i, j, k);
            if (w[c] <= 0) continue;
            basis(i, j, k, b);
            normal.selfadjointView<Eigen::Lower>().rankUpdate(b, w[c]);
            rhs += wr[c] * b;
          }
      normal = normal.selfadjointView<Eigen::Lower>();
      normal.diagonal().array() += 1e-9 * normal.diagonal().mean() + 1e-30;
      const Eigen::VectorXd coef = normal.ldlt().solve(rhs);
      parallel_for(coarse_.dim[2], [&](std::int64_t k0, std::int64_t k1) {
        Eigen::VectorXd bk(terms);
        for (std::int64_t k = k0; k < k1; ++k)
          for (std::int64_t j = 0; j < coarse_.dim[1]; ++j)
            for (std::int64_t i = 0; i < coarse_.dim[0]; ++i) {
              basis(i, j, k, bk);
              field(i, j, k) = float(bk.dot(coef));
            }
      });
    }
    if (sigma_mm > 0) {
      Image rest(coarse_, 0.0f), wi(coarse_, 0.0f);
      for (std::size_t c = 0; c < cells; ++c) {
        wi.data[c] = float(w[c]);
        rest.data[c] = float(wr[c] - w[c] * field.data[c]);
      }
      rest = gaussian_smooth(rest, sigma_mm);
      wi = gaussian_smooth(wi, sigma_mm);
      const float wmax = *std::max_element(wi.data.begin(), wi.data.end());
      for (std::size_t c = 0; c < cells; ++c)
        if (wi.data[c] > 1e-6f * wmax) field.data[c] += rest.data[c] / wi.data[c];
    }
    // The field at each voxel: sample(field, coordinate, Linear, 0) with the stored stencil.
    const std::array<std::size_t, 3> stride{1, std::size_t(coarse_.dim[0]),
                                            std::size_t(coarse_.dim[0] * coarse_.dim[1])};
    parallel_for(v_.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) {
        const Stencil& s = stencil_[std::size_t(n)];
        Trilinear t;
        t.inside = (s.flags & 8) != 0;
        t.base = s.base;
        for (int a = 0; a < 3; ++a) {
          t.step[a] = (s.flags >> a & 1) ? stride[a] : 0;
          t.f[a] = s.f[a];
        }
        log_b[std::size_t(n)] = t.inside ? float(trilinear_value(field.data.data(), t)) : 0.0f;
      }
    });
    const auto s = reduce<1>(v_.n, [&](std::int64_t b, std::int64_t e, std::array<double, 1>& acc) {
      for (std::int64_t n = b; n < e; ++n) acc[0] += log_b[std::size_t(n)];
    });
    const float mean = float(s[0] / double(v_.n));
    parallel_for(v_.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) log_b[std::size_t(n)] -= mean;
    });
  }

 private:
  // Voxel n's cell and trilinear stencil on the coarse grid; its coarse coordinates widen range
  // (min x y z, max x y z).
  void place(const Voxels& v, std::int64_t n, std::array<double, 6>& range) {
    std::array<std::int64_t, 3> p;
    std::array<float, 3> coord;
    for (int a = 0; a < 3; ++a) {
      p[a] = v.ijk[std::size_t(n)][a] + v.origin[a];
      coord[a] = float((double(p[a]) - 0.5 * double(step_[a] - 1)) / double(step_[a]));
      range[std::size_t(a)] = std::min(range[std::size_t(a)], double(coord[a]));
      range[std::size_t(a + 3)] = std::max(range[std::size_t(a + 3)], double(coord[a]));
    }
    cell_[std::size_t(n)] = coarse_.index(p[0] / step_[0], p[1] / step_[1], p[2] / step_[2]);
    const Trilinear t = trilinear_stencil(coarse_.dim, coord[0], coord[1], coord[2], Edge::Zero);
    Stencil& s = stencil_[std::size_t(n)];
    s.base = std::uint32_t(t.base);
    s.flags = t.inside ? 8 : 0;
    for (int a = 0; a < 3; ++a) {
      s.f[a] = float(t.f[a]);
      s.flags |= std::uint8_t(t.step[a] ? 1 << a : 0);
    }
  }

  const Voxels& v_;
  Grid coarse_;
  std::array<std::int64_t, 3> step_{};
  struct Stencil {
    std::uint32_t base;
    std::array<float, 3> f;
    std::uint8_t flags;  // bit a: an upper neighbour along axis a; bit 3: inside
  };
  std::vector<std::size_t> cell_;
  std::vector<std::int64_t> slab_start_;  // first voxel of each coarse z slab (and v.n at the end)
  std::vector<Stencil> stencil_;
  std::array<double, 3> mid_{}, half_{};  // centre and half extent of the mask, in cells
};

// Noise level: robust spread of each voxel's difference from the mean of its face neighbours
// (all six inside the mask). For i.i.d. noise of sd s that difference has sd s * sqrt(7/6);
// anatomy adds little to its median absolute value.
double estimate_noise(const Voxels& v) {
  // Per voxel its difference, -1 where a neighbour is missing; the median does not depend on the
  // order of the list.
  std::vector<float> diff(std::size_t(v.n));
  parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      double sum = 0;
      int count = 0;
      for (int d = 0; d < 6; ++d) {
        const std::int32_t j = v.neighbour[std::size_t(i) * 6 + std::size_t(d)];
        if (j < 0) break;
        sum += v.y[std::size_t(j)];
        ++count;
      }
      diff[std::size_t(i)] = count == 6 ? float(std::abs(v.y[std::size_t(i)] - sum / 6.0)) : -1.0f;
    }
  });
  diff.erase(std::remove(diff.begin(), diff.end(), -1.0f), diff.end());
  if (diff.empty()) return 0.0;
  auto mid = diff.begin() + std::ptrdiff_t(diff.size() / 2);
  std::nth_element(diff.begin(), mid, diff.end());
  return 1.4826 * double(*mid) / std::sqrt(7.0 / 6.0);
}

// Edge-preserving smoothing inside the mask (bilateral filter over the 3x3x3 neighbourhood):
// neighbours count by distance and by how close their intensity is, on the scale of the noise.
// A clean scan is left almost untouched; a noisy one loses most of its noise, not its edges.
void denoise(Voxels& v, const Image& t1, double range_sd, int passes) {
  if (!(range_sd > 0)) return;
  const Grid& g = t1.grid;
  const Eigen::Vector3d sp = g.spacing_mm();
  const double s_mm = sp.maxCoeff();
  std::array<float, 27> spatial{};
  for (int c = 0; c < 27; ++c) {
    const Eigen::Vector3d d(double(c % 3 - 1) * sp[0], double(c / 3 % 3 - 1) * sp[1], double(c / 9 - 1) * sp[2]);
    spatial[std::size_t(c)] = float(std::exp(-0.5 * d.squaredNorm() / (s_mm * s_mm)));
  }
  const float inv2r = float(0.5 / (range_sd * range_sd));
  // The weight of a pair of voxels is symmetric (the same spatial term, the same squared
  // difference): each is computed once, from the voxel whose neighbour lies at offset 14..26.
  // Neighbour c of voxel n: its voxel number (-1 outside the mask) and its storage index. A voxel
  // whose 26 neighbours all lie on the grid finds them by a fixed step in storage.
  std::array<std::ptrdiff_t, 27> step;
  for (int c = 0; c < 27; ++c)
    step[std::size_t(c)] = (c % 3 - 1) + (c / 3 % 3 - 1) * g.dim[0] + (c / 9 - 1) * g.dim[0] * g.dim[1];
  auto interior = [&](std::int64_t n) {
    const auto& p = v.ijk[std::size_t(n)];
    return p[0] > 0 && p[1] > 0 && p[2] > 0 && p[0] + 1 < g.dim[0] && p[1] + 1 < g.dim[1] && p[2] + 1 < g.dim[2];
  };
  auto neighbour = [&](std::int64_t n, bool in, int c, std::size_t& at) -> std::int32_t {
    if (in) {
      at = std::size_t(std::ptrdiff_t(v.index[std::size_t(n)]) + step[std::size_t(c)]);
      return v.where.data[at];
    }
    const auto& p = v.ijk[std::size_t(n)];
    const std::int64_t i = p[0] + c % 3 - 1, j = p[1] + c / 3 % 3 - 1, k = p[2] + c / 9 - 1;
    const std::int32_t m = g.inside(i, j, k) ? v.where(i, j, k) : -1;
    if (m >= 0) at = v.index[std::size_t(m)];
    return m;
  };
  Image cur = t1;
  std::vector<float> forward(std::size_t(v.n) * 13);
  for (int pass = 0; pass < passes; ++pass) {
    parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) {
        const float centre = cur.data[v.index[std::size_t(n)]];
        const bool in = interior(n);
        std::array<std::int32_t, 13> m;
        std::array<float, 16> w{};
        for (int c = 14; c < 27; ++c) {
          std::size_t at = 0;
          m[std::size_t(c - 14)] = neighbour(n, in, c, at);
          if (m[std::size_t(c - 14)] < 0) continue;
          const float d = cur.data[at] - centre;
          w[std::size_t(c - 14)] = -d * d * inv2r;
        }
        exp_inplace(w.data(), w.size());
        for (int c = 14; c < 27; ++c)
          if (m[std::size_t(c - 14)] >= 0)
            forward[std::size_t(n) * 13 + std::size_t(c - 14)] = spatial[std::size_t(c)] * w[std::size_t(c - 14)];
      }
    });
    std::vector<float> out(std::size_t(v.n));
    parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) {
        const float centre = cur.data[v.index[std::size_t(n)]];
        const bool in = interior(n);
        float sw = 0, swx = 0;
        for (int c = 0; c < 27; ++c) {
          std::size_t at = 0;
          const std::int32_t m = neighbour(n, in, c, at);
          if (m < 0) continue;
          const float x = cur.data[at];
          float w;
          if (c < 13) {
            w = forward[std::size_t(m) * 13 + std::size_t(12 - c)];
          } else if (c > 13) {
            w = forward[std::size_t(n) * 13 + std::size_t(c - 14)];
          } else {  // the voxel itself: d = 0 and exp(-0) = 1 (a non-finite d keeps the exp)
            const float d = x - centre;
            w = d == 0.0f ? spatial[13] : spatial[13] * std::exp(-d * d * inv2r);
          }
          sw += w;
          swx += w * x;
        }
        out[std::size_t(n)] = std::max(0.0f, swx / sw);
      }
    });
    parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) cur.data[v.index[std::size_t(n)]] = out[std::size_t(n)];
    });
    if (pass + 1 == passes) v.y = std::move(out);
  }
}

void check_inputs(const Image& t1, const Mask& mask, const Params& p) {
  if (!t1.grid.same_as(mask.grid, 1e-2))
    throw Error("the mask is not on the T1's grid (dimensions or world position differ)");
  if (t1.data.size() != t1.grid.voxels() || mask.data.size() != mask.grid.voxels())
    throw Error("image data does not match its grid");
  const std::size_t inside = static_cast<std::size_t>(
      std::count_if(mask.data.begin(), mask.data.end(), [](std::uint8_t m) { return m != 0; }));
  if (inside == 0) throw Error("the mask is empty");
  if (inside == mask.data.size()) throw Error("the mask covers the whole volume");
  if (inside < 1000) throw Error(fmt::format("the mask has only {} voxels: too few to fit a tissue model", inside));
  if (inside > std::size_t(std::numeric_limits<std::int32_t>::max())) throw Error("the mask is too large");
  if (!(p.max_iterations >= 1 && p.min_iterations >= 0 && p.min_iterations <= p.max_iterations))
    throw Error("iterations: need 0 <= min_iterations <= max_iterations, max_iterations >= 1");
  if (!(p.mrf_beta >= 0 && p.mrf_beta <= 10)) throw Error("mrf_beta must be in 0..10");
  if (!(p.bias_sigma_mm >= 0 && p.bias_cell_mm > 0)) throw Error("bias smoothing must be >= 0 and cell size > 0");
  if (!(p.denoise_range >= 0 && p.denoise_passes >= 0 && p.denoise_passes <= 10))
    throw Error("denoise_range must be >= 0 and denoise_passes in 0..10");
  if (!(p.map_smoothing_mm >= 0 && p.map_smoothing_mm <= 5)) throw Error("map_smoothing_mm must be in 0..5");
  if (!(p.working_spacing_mm >= 0 && p.working_spacing_mm <= 3)) throw Error("working_spacing_mm must be in 0..3");
  if (!(p.bias_degree >= -1 && p.bias_degree <= 7)) throw Error("bias polynomial degree must be in -1..7");
}

// Tuning constants of the EM (docs/segment.md, "Method"; tuned on the Philips scan and the Colin27
// copies, see "How the design got there").
constexpr int kPrefitSteps = 15;           // hard-assignment rounds of the bias pre-fit
constexpr int kPrefitStepsPerDegree = 3;   // the pre-fit's polynomial degree rises 1, 2, 3 every 3 rounds
constexpr float kPrefitMaxZ2 = 4.0f;       // pre-fit: voxels within 2 sd of their nearest class mean
constexpr float kBiasOutlierSd = 3.0f;     // EM bias step: voxels beyond 3 sd of their class are left out
constexpr float kMinPureWeight = 1e-3f;    // a voxel needs this much pure-class posterior to inform the field
constexpr double kMinSdOfContrast = 0.01;  // class sd floor, as a fraction of the WM - CSF contrast

// The EM state on one grid: the voxels, the class model, and per voxel the bias-corrected
// intensity, the ladder posteriors, the mixture fractions and the log field. The steps of one
// iteration are its member functions; every per-voxel update writes only its own voxel.
class Em {
 public:
  Em(const Voxels& v, const Grid& grid, const Params& params)
      : v_(v), grid_(grid), params_(params), n_(std::size_t(v.n)), beta_(float(params.mrf_beta)) {
    model_ = initial_model(v);
    model_.pv = params.partial_volume;
    model_.prepare();
    contrast_ = model_.mu[2] - model_.mu[0];
    log_b_.assign(n_, 0.0f);
    x_ = v.y;
    q_.assign(n_ * kLadder, 0.0f);
    mix_.assign(n_ * 4, 0.0f);
  }

  const Model& model() const { return model_; }
  const std::vector<float>& posteriors() const { return q_; }
  const std::vector<float>& fractions() const { return mix_; }
  const std::vector<float>& log_bias() const { return log_b_; }
  const std::vector<float>& corrected() const { return x_; }

  // A first field, before any posterior exists: hard nearest-class assignments (k-means steps on
  // the corrected intensities) and fits of rising polynomial degree. The low degrees are global,
  // so regions where the raw intensities put the GM/WM split in the wrong place are outvoted by
  // the rest of the brain instead of locking the field in.
  void prefit_bias(int steps) {
    start_bias();
    for (int step = 0; step < steps; ++step) {
      prefit_weights();
      const int degree = std::min(params_.bias_degree, 1 + step / kPrefitStepsPerDegree);
      bias_grid_->estimate(weight_, residual_, degree, 0.0, log_b_);
      apply_bias();
      hard_means();
    }
  }

  // Initial posteriors from the intensities alone, then EM with the spatial prior and the field.
  void initialise() {
    e_step(false);
    m_step();
  }

  // One EM iteration; returns how far the class means moved (fraction of the WM - CSF contrast).
  double iterate() {
    const auto before = model_.mu;
    if (params_.bias_correction) bias_step();
    e_step(beta_ > 0);
    m_step();
    double moved = 0;
    for (int c = 0; c < kClasses; ++c) moved = std::max(moved, std::abs(model_.mu[c] - before[c]) / contrast_);
    return moved;
  }

 private:
  void update_batch(const std::size_t* voxel, int count, bool spatial);
  void e_step(bool spatial);
  void m_step();
  void bias_step();
  void prefit_weights();
  void hard_means();

  // The bias grid and the per-voxel buffers of the field fit.
  void start_bias() {
    bias_grid_ = std::make_unique<BiasGrid>(grid_, v_, params_.bias_cell_mm);
    weight_.assign(n_, 0.0f);
    residual_.assign(n_, 0.0f);
    log_y_.resize(n_);
    for (std::size_t i = 0; i < n_; ++i) log_y_[i] = v_.y[i] > 0 ? std::log(v_.y[i]) : 0.0f;
  }
  void apply_bias() {
    parallel_for(v_.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; i += 8) {
        const std::size_t u = std::size_t(i), lanes = std::size_t(std::min<std::int64_t>(8, e - i));
        std::array<float, 8> f{};
        for (std::size_t l = 0; l < lanes; ++l) f[l] = -log_b_[u + l];
        exp_inplace(f.data(), lanes);
        for (std::size_t l = 0; l < lanes; ++l) x_[u + l] = v_.y[u + l] * f[l];
      }
    });
  }

  const Voxels& v_;
  const Grid& grid_;
  const Params& params_;
  const std::size_t n_;
  const float beta_;
  Model model_;
  double contrast_ = 0;
  std::vector<float> log_b_;  // log of the bias field
  std::vector<float> x_;      // bias-corrected intensity
  std::vector<float> q_;      // posteriors on the ladder
  std::vector<float> mix_;    // per mixture: E[fraction of the darker class], E[fraction^2]
  std::unique_ptr<BiasGrid> bias_grid_;
  std::vector<float> weight_, residual_, log_y_;
};

// Posteriors of a batch of voxels from their likelihoods and (when spatial) their neighbours'
// posteriors (of the other colour: a batch never reads what it writes).
void Em::update_batch(const std::size_t* voxel, int count, bool spatial) {
  std::array<float, kBatch> x;
  for (int j = 0; j < count; ++j) x[std::size_t(j)] = x_[voxel[j]];
  std::array<Eval, kBatch> e;
  evaluate_batch(model_, x.data(), count, e.data());
  std::array<float, kBatch * kLanes> lp;
  for (int j = 0; j < count; ++j) {
    const std::size_t i = voxel[j];
    Ladder nsum{};
    if (spatial) {
      for (int d = 0; d < 6; ++d) {
        const std::int32_t n = v_.neighbour[i * 6 + std::size_t(d)];
        if (n < 0) continue;
        const float w = float(v_.axis_weight[d / 2]);
        const float* qn = &q_[std::size_t(n) * kLadder];
        for (int l = 0; l < kLadder; ++l) nsum[l] += w * qn[l];
      }
    }
    float* lj = &lp[std::size_t(j * kLanes)];
    float best = -std::numeric_limits<float>::infinity();
    for (int k = 0; k < kLadder; ++k) {
      float field = 0;
      for (int l = 0; l < kLadder; ++l) field += compat(k, l) * nsum[l];
      lj[k] = e[std::size_t(j)].ll[k] + beta_ * field;
      best = std::max(best, lj[k]);
    }
    for (int k = 0; k < kLadder; ++k) lj[k] -= best;
    for (int k = kLadder; k < kLanes; ++k) lj[k] = 0.0f;
  }
  exp_inplace(lp.data(), std::size_t(count * kLanes));
  for (int j = 0; j < count; ++j) {
    const std::size_t i = voxel[j];
    const float* lj = &lp[std::size_t(j * kLanes)];
    float s = 0;
    for (int k = 0; k < kLadder; ++k) s += lj[k];
    for (int k = 0; k < kLadder; ++k) q_[i * kLadder + std::size_t(k)] = lj[k] / s;
    const Eval& ej = e[std::size_t(j)];
    mix_[i * 4 + 0] = ej.fraction[0];
    mix_[i * 4 + 1] = ej.fraction[1];
    mix_[i * 4 + 2] = ej.fraction2[0];
    mix_[i * 4 + 3] = ej.fraction2[1];
  }
}

// One mean-field sweep: even voxels from odd neighbours, then odd ones from the new even ones.
void Em::e_step(bool spatial) {
  for (std::uint8_t colour = 0; colour < 2; ++colour) {
    parallel_for(v_.n, [&](std::int64_t b, std::int64_t e) {
      std::array<std::size_t, kBatch> batch;
      int count = 0;
      for (std::int64_t i = b; i < e; ++i) {
        if (spatial && v_.parity[std::size_t(i)] != colour) continue;
        batch[std::size_t(count++)] = std::size_t(i);
        if (count == kBatch) update_batch(batch.data(), std::exchange(count, 0), spatial);
      }
      if (count > 0) update_batch(batch.data(), count, spatial);
    });
    if (!spatial) break;
  }
}

// Class means and spreads from the posteriors of the pure classes. The mixing proportions are
// not re-estimated: the MRF is the spatial prior (re-estimating them lets the mixed classes
// swallow the pure CSF class).
void Em::m_step() {
  // Per pure class: posterior weight, first and second moments of x. Then the normal equations
  // of the linear mixing model over all voxels: E[f f^T] mu = E[f] x, f the voxel's tissue
  // fractions (one-hot for a pure class, (a, 1 - a) for a mixture, with the posterior moments of a).
  constexpr std::size_t P = 3 * kClasses, N = P + 6 + 3;
  const auto s = reduce<N>(v_.n, [&](std::int64_t b, std::int64_t e, std::array<double, N>& acc) {
    for (std::int64_t i = b; i < e; ++i) {
      const double xi = x_[std::size_t(i)];
      const float* qi = &q_[std::size_t(i) * kLadder];
      const float* mi = &mix_[std::size_t(i) * 4];
      for (int c = 0; c < kClasses; ++c) {
        const double w = qi[2 * c];
        acc[3 * c] += w;
        acc[3 * c + 1] += w * xi;
        acc[3 * c + 2] += w * xi * xi;
      }
      // E[f f^T] as (00, 11, 22, 01, 12, 02) and E[f] x
      double ff[6] = {qi[0], qi[2], qi[4], 0, 0, 0}, fx[3] = {qi[0] * xi, qi[2] * xi, qi[4] * xi};
      for (int p = 0; p < 2; ++p) {
        const double w = qi[2 * p + 1], a = mi[p], a2 = mi[2 + p];
        ff[p] += w * a2;
        ff[p + 1] += w * (1 - 2 * a + a2);
        ff[3 + p] += w * (a - a2);
        fx[p] += w * a * xi;
        fx[p + 1] += w * (1 - a) * xi;
      }
      for (int t = 0; t < 6; ++t) acc[P + std::size_t(t)] += ff[t];
      for (int t = 0; t < 3; ++t) acc[P + 6 + std::size_t(t)] += fx[t];
    }
  });
  std::array<double, kClasses> mu = model_.mu;
  for (int c = 0; c < kClasses; ++c)
    if (s[3 * c] >= 1.0) mu[c] = s[3 * c + 1] / s[3 * c];  // an emptied class keeps its last estimate
  if (params_.mixel_means && model_.pv) {
    Eigen::Matrix3d a;
    a << s[P + 0], s[P + 3], s[P + 5], s[P + 3], s[P + 1], s[P + 4], s[P + 5], s[P + 4], s[P + 2];
    const Eigen::Vector3d rhs(s[P + 6], s[P + 7], s[P + 8]);
    const Eigen::Vector3d sol = a.ldlt().solve(rhs);
    if (sol.allFinite() && sol[0] > 0 && sol[0] < sol[1] && sol[1] < sol[2])
      for (int c = 0; c < kClasses; ++c) mu[c] = sol[c];
  }
  for (int c = 0; c < kClasses; ++c) {
    if (s[3 * c] < 1.0) continue;
    const double m1 = s[3 * c + 1] / s[3 * c], m2 = s[3 * c + 2] / s[3 * c];
    // (without the mixel means mu = m1: the same arithmetic as before issue 15, same bits)
    const double var = std::max(0.0, params_.mixel_means ? m2 - 2 * mu[c] * m1 + mu[c] * mu[c] : m2 - mu[c] * mu[c]);
    model_.mu[c] = mu[c];
    model_.sd[c] = std::max(std::sqrt(var), kMinSdOfContrast * contrast_);
  }
  model_.prepare();
}

// Residual bias: log(y / expected clean intensity), weighted by its precision, smoothed.
void Em::bias_step() {
  if (!bias_grid_) start_bias();
  parallel_for(v_.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::size_t u = std::size_t(i);
      // Only the pure classes inform the field: a mixed voxel's expected intensity follows its
      // own intensity (through the fraction), so its residual says nothing about the bias.
      const float* qi = &q_[u * kLadder];
      float w = 0, m = 0, var = 0;
      for (int c = 0; c < kClasses; ++c) {
        w += qi[2 * c];
        m += qi[2 * c] * model_.fmu[c];
        var += qi[2 * c] / model_.ivar[c];
      }
      if (w > kMinPureWeight) {
        m /= w;
        var /= w;
      }
      // Outliers (vessels, dura, lesions) do not steer the field.
      const bool usable =
          w > kMinPureWeight && v_.y[u] > 0 && m > 0 && std::abs(x_[u] - m) < kBiasOutlierSd * std::sqrt(var);
      weight_[u] = usable ? w * m * m / var : 0.0f;
      residual_[u] = usable ? log_y_[u] - std::log(m) : 0.0f;
    }
  });
  bias_grid_->estimate(weight_, residual_, params_.bias_degree, params_.bias_sigma_mm, log_b_);
  apply_bias();
}

// Pre-fit weights: each voxel's nearest class mean, its precision, and the log residual.
void Em::prefit_weights() {
  std::array<float, kClasses> log_mu;
  for (int c = 0; c < kClasses; ++c) log_mu[c] = std::log(model_.fmu[c]);
  parallel_for(v_.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::size_t u = std::size_t(i);
      int best = 0;
      for (int c = 1; c < kClasses; ++c)
        if (std::abs(x_[u] - model_.fmu[c]) < std::abs(x_[u] - model_.fmu[best])) best = c;
      const float z2 = (x_[u] - model_.fmu[best]) * (x_[u] - model_.fmu[best]) * model_.ivar[best];
      const bool usable = v_.y[u] > 0 && z2 < kPrefitMaxZ2;
      weight_[u] = usable ? model_.fmu[best] * model_.fmu[best] * model_.ivar[best] : 0.0f;
      residual_[u] = usable ? log_y_[u] - log_mu[best] : 0.0f;
    }
  });
}

// Pre-fit class means and spreads from hard nearest-class assignments (a k-means step).
void Em::hard_means() {
  constexpr std::size_t N = 3 * kClasses;
  const auto s = reduce<N>(v_.n, [&](std::int64_t b, std::int64_t e, std::array<double, N>& acc) {
    for (std::int64_t i = b; i < e; ++i) {
      const double xi = x_[std::size_t(i)];
      int best = 0;
      for (int c = 1; c < kClasses; ++c)
        if (std::abs(xi - model_.mu[c]) < std::abs(xi - model_.mu[best])) best = c;
      acc[3 * best] += 1;
      acc[3 * best + 1] += xi;
      acc[3 * best + 2] += xi * xi;
    }
  });
  for (int c = 0; c < kClasses; ++c) {
    if (s[3 * c] < 1.0) continue;
    model_.mu[c] = s[3 * c + 1] / s[3 * c];
    model_.sd[c] = std::max(std::sqrt(std::max(0.0, s[3 * c + 2] / s[3 * c] - model_.mu[c] * model_.mu[c])),
                            kMinSdOfContrast * contrast_);
  }
  model_.prepare();
}

// ---- CSF/WM walls ------------------------------------------------------------------------------
// The ladder has no CSF/WM mixture, so the partial-volume wall between a large CSF space (grown
// ventricles, a cavity) and white matter reads as a thin grey-matter rim: its intensities are those
// of CSF/GM, GM and GM/WM. After the EM, a voxel with a pure CSF voxel on one side and a pure WM
// voxel on the other, close enough that no grey-matter layer fits between them, gets a prior
// share s for the CSF/WM mixture (s = the largest product of those two posteriors), and its
// grey-matter-bearing posterior (CSF/GM + GM + GM/WM) is split between that mixture and the
// ladder's reading by their likelihoods: share r = s L_CW / (s L_CW + (1 - s) L_G). A voxel at the
// grey-matter mean keeps most of its GM (the narrow GM Gaussian out-scores the flat mixture); one
// whose intensity the ladder explains only through its own mixtures goes to CSF and WM.
constexpr double kWallSpanMm = 3.0;     // pure CSF and pure WM at most this far apart, across the voxel
constexpr float kWallPriorMax = 0.99f;  // the prior share never makes the likelihood irrelevant

// Per voxel the prior share s of the CSF/WM mixture (0 where the ladder has no GM to give).
std::vector<float> wall_prior(const Voxels& v, const Grid& g, const std::vector<float>& q) {
  struct Pair {
    std::array<int, 3> dark, bright;  // offsets of the two sides
  };
  std::vector<Pair> pairs;
  const Eigen::Vector3d sp = g.spacing_mm();
  for (int dk = -1; dk <= 1; ++dk)
    for (int dj = -1; dj <= 1; ++dj)
      for (int di = -1; di <= 1; ++di) {
        if (dk * 9 + dj * 3 + di <= 0) continue;  // 13 directions, each once
        const double step = Eigen::Vector3d(di * sp[0], dj * sp[1], dk * sp[2]).norm();
        for (int s1 = 1; (s1 + 1) * step <= kWallSpanMm + 1e-6; ++s1)
          for (int s2 = 1; (s1 + s2) * step <= kWallSpanMm + 1e-6; ++s2) {
            pairs.push_back({{-s1 * di, -s1 * dj, -s1 * dk}, {s2 * di, s2 * dj, s2 * dk}});
            pairs.push_back({{s2 * di, s2 * dj, s2 * dk}, {-s1 * di, -s1 * dj, -s1 * dk}});
          }
      }
  std::vector<float> prior(std::size_t(v.n), 0.0f), csf(std::size_t(v.n)), wm(std::size_t(v.n));
  for (std::size_t n = 0; n < std::size_t(v.n); ++n) {
    csf[n] = q[n * kLadder];
    wm[n] = q[n * kLadder + 4];
  }
  auto at = [&](const std::array<std::int32_t, 3>& p, const std::array<int, 3>& o) -> std::int32_t {
    const std::int64_t i = p[0] + o[0], j = p[1] + o[1], k = p[2] + o[2];
    return g.inside(i, j, k) ? v.where(i, j, k) : -1;
  };
  parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t n = b; n < e; ++n) {
      const float* qn = &q[std::size_t(n) * kLadder];
      if (qn[1] + qn[2] + qn[3] < 1e-3f) continue;
      float best = 0;
      for (const Pair& pr : pairs) {
        const std::int32_t c = at(v.ijk[std::size_t(n)], pr.dark);
        if (c < 0 || !(csf[std::size_t(c)] > best)) continue;  // the product cannot beat best
        const std::int32_t w = at(v.ijk[std::size_t(n)], pr.bright);
        if (w >= 0) best = std::max(best, csf[std::size_t(c)] * wm[std::size_t(w)]);
      }
      prior[std::size_t(n)] = std::min(best, kWallPriorMax);
    }
  });
  return prior;
}

// The tissue fractions of one voxel: the ladder folded by its mixture fractions, with the share of
// its GM-bearing posterior that the CSF/WM mixture explains (prior s) moved to CSF and WM.
std::array<float, kClasses> fold_voxel(const Model& m, const float* qi, const float* mi, float x, float s) {
  if (!(s > 0))
    return {qi[0] + qi[1] * mi[0], qi[2] + qi[1] * (1 - mi[0]) + qi[3] * mi[1], qi[4] + qi[3] * (1 - mi[1])};
  Eval e;
  evaluate(m, x, e);
  float ll_cw, a_cw, a2_cw;
  mixture(m, kCsfWm, x, ll_cw, a_cw, a2_cw);
  const float gm_mass = qi[1] + qi[2] + qi[3];
  const float top = std::max({e.ll[1], e.ll[2], e.ll[3]});
  float sum = 0;
  for (int k = 1; k <= 3; ++k) sum += qi[k] * std::exp(e.ll[k] - top);
  const float ll_gm = top + std::log(sum / gm_mass);  // the ladder's GM-bearing likelihood, by its own weights
  const float r = 1.0f / (1.0f + (1.0f - s) / s * std::exp(std::min(ll_gm - ll_cw, 80.0f)));
  const float keep = 1.0f - r, moved = r * gm_mass;
  return {qi[0] + keep * qi[1] * mi[0] + moved * a_cw, keep * (qi[2] + qi[1] * (1 - mi[0]) + qi[3] * mi[1]),
          qi[4] + keep * qi[3] * (1 - mi[1]) + moved * (1 - a_cw)};
}
// ---- end of the CSF/WM walls ------------------------------------------------------------------

// Folds the mixed classes into the three tissue maps by their estimated fractions (with the CSF/WM
// wall rule when on); dseg is the argmax, the bias field comes along.
void fold_maps(const Em& em, const Voxels& v, const Grid& g, bool walls, Result& r) {
  for (auto& p : r.probability) p = Image(g, 0.0f);
  r.dseg = Labels(g, 0);
  r.bias_field = Image(g, 1.0f);
  const std::vector<float>& q = em.posteriors();
  const std::vector<float>& mix = em.fractions();
  const std::vector<float>& log_b = em.log_bias();
  const std::vector<float>& x = em.corrected();
  const std::vector<float> prior =
      walls && em.model().pv ? wall_prior(v, g, q) : std::vector<float>(std::size_t(v.n), 0.0f);
  parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::size_t u = std::size_t(i);
      const std::array<float, kClasses> p = fold_voxel(em.model(), &q[u * kLadder], &mix[u * 4], x[u], prior[u]);
      const float total = p[0] + p[1] + p[2];
      int best = 0;
      for (int c = 0; c < kClasses; ++c) {
        r.probability[std::size_t(c)].data[v.index[u]] = p[c] / total;
        if (p[c] > p[best]) best = c;
      }
      r.dseg.data[v.index[u]] = std::uint8_t(best + 1);
      r.bias_field.data[v.index[u]] = std::exp(log_b[u]);
    }
  });
}

// A light smoothing of the maps inside the mask: the class boundaries then follow the anatomy
// rather than the last voxel's noise (it matters on noisy scans, hardly on clean ones).
void smooth_maps(const Voxels& v, const Mask& mask, double sigma_mm, Result& r) {
  if (!(sigma_mm > 0)) return;
  for (auto& p : r.probability) p = masked_smooth(p, mask, sigma_mm);
  parallel_for(v.n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::size_t at = v.index[std::size_t(i)];
      float t = 0;
      int best = 0;
      for (int c = 0; c < kClasses; ++c) {
        t += r.probability[c].data[at];
        if (r.probability[c].data[at] > r.probability[best].data[at]) best = c;
      }
      for (int c = 0; c < kClasses; ++c) r.probability[c].data[at] /= t;
      r.dseg.data[at] = std::uint8_t(best + 1);
    }
  });
  parallel_for(std::int64_t(mask.data.size()), [&](std::int64_t b, std::int64_t e) {
    for (auto& p : r.probability)
      for (std::size_t i = std::size_t(b); i < std::size_t(e); ++i)
        if (!mask.data[i]) p.data[i] = 0;
  });
}

// Class volumes (probability sums and label counts) in block order.
void measure_voxels(const Voxels& v, double voxel_ml, Result& r) {
  constexpr std::size_t N = 2 * kClasses;
  const auto sums = reduce<N>(v.n, [&](std::int64_t b, std::int64_t e, std::array<double, N>& acc) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::size_t at = v.index[std::size_t(i)];
      for (int c = 0; c < kClasses; ++c) acc[std::size_t(c)] += r.probability[std::size_t(c)].data[at];
      acc[std::size_t(kClasses + r.dseg.data[at] - 1)] += 1;
    }
  });
  for (int c = 0; c < kClasses; ++c) {
    r.volume_ml[c] = sums[std::size_t(c)] * voxel_ml;
    r.label_volume_ml[c] = sums[std::size_t(kClasses + c)] * voxel_ml;
  }
}

// The EM iterations with their progress and convergence test.
void run_em(Em& em, const Params& params, double t0, Result& r) {
  Progress progress("segmenting", params.max_iterations);
  for (int it = 1; it <= params.max_iterations; ++it) {
    const double moved = em.iterate();
    ++progress;
    const Model& m = em.model();
    log::debug(fmt::format("{:.2f} s, iteration {}: means {:.1f} {:.1f} {:.1f}, sd {:.1f} {:.1f} {:.1f}, moved {:.2e}",
                           now_seconds() - t0, it, m.mu[0], m.mu[1], m.mu[2], m.sd[0], m.sd[1], m.sd[2], moved));
    r.iterations = it;
    if (it >= params.min_iterations && moved < params.tolerance) {
      r.converged = true;
      break;
    }
  }
  progress.set(params.max_iterations);
}

// The tissue model on the mask's box `t1`, `mask` (a crop of the full grid at `origin`): the maps
// on the box.
Result segment_box(const Image& t1, const Mask& mask, const Grid& full, const std::array<std::int64_t, 3>& origin,
                   const Params& params) {
  const double t0 = now_seconds();
  Voxels v = gather(t1, mask, origin);
  const double noise_sd = estimate_noise(v);
  denoise(v, t1, params.denoise_range * noise_sd, params.denoise_passes);
  log::debug(fmt::format("noise sd {:.1f}, denoised at {:.2f} s", noise_sd, now_seconds() - t0));
  Em em(v, full, params);
  if (params.bias_correction && params.bias_degree >= 1) em.prefit_bias(kPrefitSteps);
  log::debug(fmt::format("bias prefit done at {:.2f} s: means {:.1f} {:.1f} {:.1f}", now_seconds() - t0,
                         em.model().mu[0], em.model().mu[1], em.model().mu[2]));
  em.initialise();
  log::debug(fmt::format("initialised in {:.2f} s: means {:.1f} {:.1f} {:.1f}", now_seconds() - t0, em.model().mu[0],
                         em.model().mu[1], em.model().mu[2]));
  Result r;
  run_em(em, params, t0, r);
  const Model& model = em.model();
  if (!(model.mu[0] < model.mu[1] && model.mu[1] < model.mu[2]))
    throw Error("the tissue model did not keep CSF < GM < WM in intensity (is it a T1?)");
  fold_maps(em, v, t1.grid, params.csf_wm_walls, r);
  smooth_maps(v, mask, params.map_smoothing_mm, r);
  measure_voxels(v, t1.grid.voxel_volume_ml(), r);
  r.noise_sd = noise_sd;
  r.mean = model.mu;
  r.sd = model.sd;
  log::debug(fmt::format("segmented in {:.2f} s", now_seconds() - t0));
  return r;
}

// The tissue model on the grid it is given (segment() decides which grid that is). It works on
// the mask's bounding box, with a margin wide enough that nothing it computes (3x3x3 pre-filter,
// map smoothing, which see zeros beyond the mask either way) differs from the full grid's.
Result segment_grid(const Image& t1, const Mask& mask, const Params& params) {
  std::int64_t margin = 2;
  if (params.map_smoothing_mm > 0) {
    const Eigen::Vector3d sp = t1.grid.spacing_mm();
    for (int a = 0; a < 3; ++a)  // the radius of gaussian_smooth's kernel, plus 2
      margin = std::max<std::int64_t>(margin, 2 + std::int64_t(std::ceil(3.0 * params.map_smoothing_mm / sp[a])));
  }
  const Crop box = bounding_crop(mask, margin);
  Result r = segment_box(crop(t1, box), crop(mask, box), t1.grid, box.offset, params);
  for (auto& p : r.probability) p = uncrop(p, t1.grid, box, 0.0f);
  r.dseg = uncrop(r.dseg, t1.grid, box, std::uint8_t(0));
  r.bias_field = uncrop(r.bias_field, t1.grid, box, 1.0f);
  return r;
}

}  // namespace

// ---- working grid ---------------------------------------------------------------------------
// A grid finer than the working spacing (e.g. 0.4 x 0.4 x 1.5 mm clinical scans): the model runs
// on the shared near-1 mm working grid (include/tmsplan/working_grid.hpp: box-averaged, anti-
// aliased), and the probabilities come back to the input grid by linear sampling; dseg is their
// argmax there. Everything about the working grid is in this section.

Grid working_grid(const Grid& input, double spacing_mm) { return workgrid::choose(input, spacing_mm); }

namespace {

// Volumes (probability sums and label counts) of a result on the input grid.
void measure_volumes(Result& r, const Mask& mask) {
  const double ml = mask.grid.voxel_volume_ml();
  r.volume_ml = {};
  r.label_volume_ml = {};
  for (std::size_t i = 0; i < mask.data.size(); ++i) {  // serial: fixed summation order
    if (!mask.data[i]) continue;
    for (int c = 0; c < kClasses; ++c) r.volume_ml[std::size_t(c)] += r.probability[std::size_t(c)].data[i];
    if (r.dseg.data[i]) r.label_volume_ml[std::size_t(r.dseg.data[i] - 1)] += 1;
  }
  for (int c = 0; c < kClasses; ++c) {
    r.volume_ml[std::size_t(c)] *= ml;
    r.label_volume_ml[std::size_t(c)] *= ml;
  }
}

// The model on the working grid, its maps brought back to the input grid.
Result segment_on_working_grid(const Image& t1, const Mask& mask, const Params& params, const Grid& work) {
  const double w = params.working_spacing_mm;
  const Eigen::Matrix4d same = Eigen::Matrix4d::Identity();
  const Image wt1 = workgrid::to_work(t1, work);
  const Mask wmask = workgrid::mask_to_work(mask, work);
  log::debug(fmt::format("working grid {}x{}x{} at {:.2f}x{:.2f}x{:.2f} mm", work.dim[0], work.dim[1], work.dim[2],
                         work.spacing_mm()[0], work.spacing_mm()[1], work.spacing_mm()[2]));
  check_inputs(wt1, wmask, params);
  Result wr = segment_grid(wt1, wmask, params);

  Result r;
  r.mean = wr.mean;
  r.sd = wr.sd;
  r.noise_sd = wr.noise_sd;
  r.iterations = wr.iterations;
  r.converged = wr.converged;
  for (int c = 0; c < kClasses; ++c) {
    // Values outside the working mask: the normalised-convolution extension of the inside, so that
    // linear sampling near the mask edge does not mix in zeros.
    Image& p = wr.probability[std::size_t(c)];
    const Image ext = masked_smooth(p, wmask, 1.5 * w);
    for (std::size_t i = 0; i < p.data.size(); ++i)
      if (!wmask.data[i]) p.data[i] = ext.data[i];
    r.probability[std::size_t(c)] = workgrid::image_to_input(p, t1.grid);
    p = Image();
  }
  r.bias_field = resample_affine(wr.bias_field, t1.grid, same, Interp::Linear, 1.0f);
  r.dseg = Labels(t1.grid, 0);
  parallel_for(std::int64_t(mask.data.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::size_t i = std::size_t(b); i < std::size_t(e); ++i) {
      if (!mask.data[i]) {
        for (auto& p : r.probability) p.data[i] = 0.0f;
        r.bias_field.data[i] = 1.0f;
        continue;
      }
      float total = 0.0f;
      for (const auto& p : r.probability) total += std::max(0.0f, p.data[i]);
      int best = 0;
      for (int c = 0; c < kClasses; ++c) {
        float& v = r.probability[std::size_t(c)].data[i];
        v = total > 1e-6f ? std::max(0.0f, v) / total : (c == Csf ? 1.0f : 0.0f);
        if (v > r.probability[std::size_t(best)].data[i]) best = c;
      }
      r.dseg.data[i] = std::uint8_t(best + 1);
    }
  });
  measure_volumes(r, mask);
  return r;
}
// ---- end of the working grid ----------------------------------------------------------------

// A FLAIR or T2 image can still be split into three intensity classes, but its layers land in
// the wrong places: the cortex, brighter than white matter there, comes out as "WM". In the brain
// mask's outer 3 mm, the WM label's count over the GM label's: 0.02-0.04 on the Philips scan,
// Colin27, their copies and thick-slice, defaced and anisotropic versions; 0.78 on the Philips
// scan given FLAIR-like levels (CSF 0.1, GM 0.9, WM 0.65 from FAST's fractions). Refused above 0.3.
constexpr double kOuterWmOverGm = 0.3;
constexpr double kOuterTissueShare = 0.1;  // the check needs GM + WM in 10 % of that layer

}  // namespace

void check_layer_order(const Labels& dseg, const Mask& mask, const std::string& source_name) {
  const Mask outer = outer_layer(mask, 3.0);
  std::size_t per_label[4] = {0, 0, 0, 0};  // background, CSF, GM, WM
  for (std::size_t i = 0; i < outer.data.size(); ++i)
    if (outer.data[i] && dseg.data[i] < 4) ++per_label[dseg.data[i]];
  const std::size_t gm = per_label[2], wm = per_label[3], labelled = per_label[1] + gm + wm;
  // Too little tissue there to tell (a mask with a wide CSF margin): no verdict. Heads: 30-60 %.
  if (double(gm + wm) < kOuterTissueShare * double(labelled)) return;
  const double ratio = gm > 0 ? double(wm) / double(gm) : std::numeric_limits<double>::infinity();
  log::debug(fmt::format("outer 3 mm of the mask: WM / GM labels {:.3f}", ratio));
  if (ratio > kOuterWmOverGm)
    throw Error(fmt::format("the brain's outer layer comes out as white matter ({:.0f} WM voxels per 100 GM there), "
                            "as when grey matter is brighter than white matter (FLAIR, T2): is it a T1?",
                            100.0 * ratio),
                source_name);
}

Result segment(const Image& t1, const Mask& mask, const Params& params) {
  check_inputs(t1, mask, params);
  const Grid work = working_grid(t1.grid, params.working_spacing_mm);
  if (work.same_as(t1.grid, 1e-6)) return segment_grid(t1, mask, params);
  return segment_on_working_grid(t1, mask, params, work);
}

}  // namespace tmsplan::tissue
