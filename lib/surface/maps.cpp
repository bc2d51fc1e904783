// Cortical maps: scalp-to-cortex distance, gyral crown / sulcal depth, per-region summaries.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/surface.hpp"

namespace tmsplan {
namespace {

// Distance from each voxel centre inside `inside` to the boundary of `inside`: the EDT to the
// nearest voxel outside, less half a voxel (the boundary lies half-way between the last voxel in
// and the first voxel out).
Image depth_below_boundary(const Mask& inside) {
  Image d = distance_to(mask_not(inside));
  const float half = 0.5f * float(inside.grid.spacing_mm().minCoeff());
  for (std::size_t i = 0; i < d.data.size(); ++i) d.data[i] = inside.data[i] ? std::max(0.0f, d.data[i] - half) : 0.0f;
  return d;
}

void require_same_grid(const Grid& a, const Grid& b, const std::string& what) {
  if (!a.same_as(b)) throw Error(what + " are not on the same grid");
}

}  // namespace

Image scalp_distance_map(const Mask& head, const Mask& cortex) {
  require_same_grid(head.grid, cortex.grid, "head and cortex masks");
  if (count(head) == 0) throw Error("the head mask is empty");
  const Image depth = depth_below_boundary(head);
  Image out(head.grid, 0.0f);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = cortex.data[i] ? depth.data[i] : 0.0f;
  return out;
}

Image gyral_depth_map(const Mask& brain, const Mask& gm, double hull_radius_mm) {
  require_same_grid(brain.grid, gm.grid, "brain and grey-matter masks");
  if (count(brain) == 0) throw Error("the brain mask is empty");
  if (!(hull_radius_mm > 0.0) || hull_radius_mm > 100.0) throw Error("hull radius must be in (0, 100] mm");
  // Work in the brain's box grown by the radius, beyond the grid when need be (outside it is
  // outside the brain), so that the closing's dilation is never cut off by the field of view.
  const Eigen::Vector3d h = brain.grid.spacing_mm();
  const Crop tight = bounding_crop(brain, 0);
  Crop box;
  std::array<std::int64_t, 3> margin{};
  for (std::size_t a = 0; a < 3; ++a) {
    margin[a] = std::int64_t(std::ceil(hull_radius_mm / h[int(a)])) + 2;
    box.offset[a] = tight.offset[a] - margin[a];
    box.grid.dim[a] = tight.grid.dim[a] + 2 * margin[a];
  }
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) shift(a, 3) = double(box.offset[std::size_t(a)]);
  box.grid.vox2ras = RasMatrix(brain.grid.vox2ras.m * shift);
  Mask b(box.grid, 0);
  for (std::int64_t k = 0; k < box.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < box.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < box.grid.dim[0]; ++i) {
        const std::int64_t gi = i + box.offset[0], gj = j + box.offset[1], gk = k + box.offset[2];
        if (brain.grid.inside(gi, gj, gk) && brain(gi, gj, gk)) b(i, j, k) = 1;
      }
  const Mask hull = fill_holes(mask_or(close(b, hull_radius_mm), b));
  const Image depth = depth_below_boundary(hull);
  Image out(brain.grid, 0.0f);
  for (std::int64_t k = 0; k < box.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < box.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < box.grid.dim[0]; ++i) {
        const std::int64_t gi = i + box.offset[0], gj = j + box.offset[1], gk = k + box.offset[2];
        if (brain.grid.inside(gi, gj, gk) && gm(gi, gj, gk)) out(gi, gj, gk) = depth(i, j, k);
      }
  // Grey matter outside the box lies outside the hull: depth 0 there.
  return out;
}

namespace {

template <class LabelOf>
std::vector<RegionStats> summarize_regions(const Image& map, std::size_t n, LabelOf label_of,
                                           const std::vector<int>& labels, const Mask* within) {
  std::map<int, std::vector<float>> values;
  std::vector<int> order = labels;
  const bool all = labels.empty();
  for (int l : labels) values[l];
  for (std::size_t i = 0; i < n; ++i) {
    if (within && !within->data[i]) continue;
    const int l = label_of(i);
    if (all) {
      if (l != 0) values[l].push_back(map.data[i]);
    } else {
      const auto it = values.find(l);
      if (it != values.end()) it->second.push_back(map.data[i]);
    }
  }
  if (all)
    for (const auto& kv : values) order.push_back(kv.first);
  std::vector<RegionStats> out;
  for (int l : order) {
    std::vector<float>& v = values[l];
    RegionStats s;
    s.label = l;
    s.count = v.size();
    if (v.empty()) {
      s.mean = s.min = s.median = s.max = std::numeric_limits<double>::quiet_NaN();
    } else {
      double sum = 0;
      for (float x : v) sum += double(x);
      s.mean = sum / double(v.size());
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      s.min = double(*lo);
      s.max = double(*hi);
      const std::size_t mid = v.size() / 2;
      std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(mid), v.end());
      s.median = double(v[mid]);
      if (v.size() % 2 == 0)
        s.median = 0.5 * (s.median + double(*std::max_element(v.begin(), v.begin() + std::ptrdiff_t(mid))));
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace

std::vector<RegionStats> region_summary(const Image& map, const Labels& atlas, const std::vector<int>& labels,
                                        const Mask* within) {
  require_same_grid(map.grid, atlas.grid, "map and atlas");
  if (within) require_same_grid(map.grid, within->grid, "map and mask");
  return summarize_regions(
      map, map.data.size(), [&](std::size_t i) { return int(atlas.data[i]); }, labels, within);
}

std::vector<RegionStats> region_summary(const Image& map, const Image& atlas, const std::vector<int>& labels,
                                        const Mask* within) {
  require_same_grid(map.grid, atlas.grid, "map and atlas");
  if (within) require_same_grid(map.grid, within->grid, "map and mask");
  return summarize_regions(
      map, map.data.size(),
      [&](std::size_t i) { return std::isfinite(atlas.data[i]) ? int(std::lround(atlas.data[i])) : 0; }, labels,
      within);
}

}  // namespace tmsplan
