// skull-strip's tissue levels: the CSF, GM and WM intensities of the brain prior's core.
#include "levels.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"

namespace tmsplan::brain {
namespace {

// A histogram of the values, 2048 bins between two given values (outliers in the end bins).
struct Histogram {
  double lo = 0.0, width = 1.0;
  std::vector<double> count;
  double x(std::size_t i) const { return lo + (double(i) + 0.5) * width; }
};

Histogram histogram_of(const std::vector<float>& values, double lo, double hi) {
  Histogram h;
  h.count.assign(2048, 0.0);
  h.lo = lo;
  h.width = std::max(hi - lo, 1e-12) / double(h.count.size());
  for (float v : values) {
    const double b = std::floor((double(v) - h.lo) / h.width);
    h.count[std::size_t(std::clamp(b, 0.0, double(h.count.size() - 1)))] += 1.0;
  }
  return h;
}

// k-means on the histogram: `place` lays out the centres from the pure levels (each centre with
// its pure class, or -1 for a partial-volume centre, which follows the pure ones); the pure levels
// are the means of their bins. Stops when no bin changes class.
template <class Place> void histogram_kmeans(const Histogram& h, std::array<double, 3>& pure, Place place) {
  std::vector<int> owner(h.count.size(), -1);
  for (int it = 0; it < 200; ++it) {
    const std::vector<std::pair<double, int>> centres = place(pure);  // (level, pure class or -1)
    bool changed = false;
    std::array<double, 3> sum{0, 0, 0}, n{0, 0, 0};
    for (std::size_t i = 0; i < h.count.size(); ++i) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < centres.size(); ++c)
        if (std::abs(h.x(i) - centres[c].first) < std::abs(h.x(i) - centres[best].first)) best = c;
      changed = changed || owner[i] != int(best);
      owner[i] = int(best);
      if (const int k = centres[best].second; k >= 0) {
        sum[std::size_t(k)] += h.count[i] * h.x(i);
        n[std::size_t(k)] += h.count[i];
      }
    }
    for (std::size_t k = 0; k < 3; ++k)
      if (n[k] > 0) pure[k] = sum[k] / n[k];
    if (!changed && it > 0) break;
  }
}

}  // namespace

// The pure-tissue levels, robust to partial volume.
// A three-class k-means puts every voxel that is more CSF than GM into the CSF class, so its mean
// rises with the share of mixed voxels: thick slices blur thin sulcal CSF and cortex, and the
// CSF mean of a 1.5 mm-slice copy of one head came out 14 % higher than on its 1 mm scan. Here
// each pair of neighbouring classes gets a partial-volume class at the midpoint of their means,
// and the pure means are updated from the voxels nearest the pure levels only; the mixed voxels
// fall to the partial-volume classes (a hard-assignment form of the mixed-class models of
// Santago & Gage 1993, Shattuck 2001), started from plain three-class k-means; both on a
// 2048-bin histogram of the mask's values (deterministic, no per-voxel loop).
TissueLevels tissue_levels(const std::vector<float>& v) {
  if (v.size() < 1000) throw Error("too few voxels in the brain prior's core to find tissue classes");
  // The five quantiles (as quantile(): rank floor(q (n - 1))) from one copy, one nested selection.
  const std::array<double, 5> q{0.0005, 0.1, 0.45, 0.85, 0.9995};
  std::vector<std::size_t> ranks;
  for (const double x : q) ranks.push_back(static_cast<std::size_t>(x * double(v.size() - 1)));
  std::vector<float> ordered = v;  // reordered so that each rank holds its value
  select_ranks(ordered, ranks);
  const Histogram h = histogram_of(v, ordered[ranks[0]], ordered[ranks[4]]);
  std::array<double, 3> m{ordered[ranks[1]], ordered[ranks[2]], ordered[ranks[3]]};
  histogram_kmeans(h, m, [](const std::array<double, 3>& p) {
    return std::vector<std::pair<double, int>>{{p[0], 0}, {p[1], 1}, {p[2], 2}};
  });
  std::sort(m.begin(), m.end());
  const std::array<double, 3> plain = m;
  histogram_kmeans(h, m, [](const std::array<double, 3>& p) {
    return std::vector<std::pair<double, int>>{
        {p[0], 0}, {0.5 * (p[0] + p[1]), -1}, {p[1], 1}, {0.5 * (p[1] + p[2]), -1}, {p[2], 2}};
  });
  log::debug(fmt::format("k-means CSF {:.4g} GM {:.4g} WM {:.4g}; pure CSF {:.4g} GM {:.4g} WM {:.4g}", plain[0],
                         plain[1], plain[2], m[0], m[1], m[2]));
  // A fit that lost the order of the classes (no contrast, or a class emptied) falls back.
  return {plain, (m[0] < m[1] && m[1] < m[2]) ? m : plain};
}

}  // namespace tmsplan::brain
