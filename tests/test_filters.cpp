// The morphology and component filters (include/tmsplan/filters.hpp) against plain reference
// implementations on random masks: the ball by its definition (every offset within the radius,
// voxels beyond the grid neither set nor background), components and holes by voxel-by-voxel
// flood fills (the algorithms these filters used before runs and rows replaced them).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "tmsplan/filters.hpp"

using namespace tmsplan;

namespace {

Grid grid_of(const std::array<std::int64_t, 3>& dim, const Eigen::Vector3d& spacing) {
  Grid g;
  g.dim = dim;
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m.topLeftCorner<3, 3>() = spacing.asDiagonal();
  m.topRightCorner<3, 1>() = Eigen::Vector3d(-3.0, 7.5, 1.25);
  g.vox2ras = RasMatrix(m);
  return g;
}

// Random blobs (balls of random radii) plus isolated voxels and a few holes.
Mask random_mask(const Grid& g, std::mt19937& rng, int blobs, double fill) {
  Mask m(g, 0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int b = 0; b < blobs; ++b) {
    const Eigen::Vector3d c(u(rng) * double(g.dim[0]), u(rng) * double(g.dim[1]), u(rng) * double(g.dim[2]));
    const double r = 1.0 + 4.0 * u(rng);
    const std::uint8_t value = u(rng) < 0.8 ? 1 : 0;
    for (std::int64_t k = 0; k < g.dim[2]; ++k)
      for (std::int64_t j = 0; j < g.dim[1]; ++j)
        for (std::int64_t i = 0; i < g.dim[0]; ++i)
          if ((Eigen::Vector3d(double(i), double(j), double(k)) - c).norm() <= r) m(i, j, k) = value;
  }
  for (auto& v : m.data)
    if (u(rng) < fill) v = 1 - v;
  return m;
}

// dilate() by its definition: a set voxel at an offset whose squared length (summed as the
// distance transform sums it) is within (radius + 1 um)^2.
Mask reference_dilate(const Mask& m, double radius_mm) {
  const Eigen::Vector3d h = m.grid.spacing_mm();
  const double r2 = (radius_mm + 1e-3) * (radius_mm + 1e-3);
  const auto& d = m.grid.dim;
  Mask out(m.grid, 0);
  int reach[3];
  for (int a = 0; a < 3; ++a) reach[a] = int(std::ceil((radius_mm + 1e-3) / h[a])) + 1;
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        for (int c = -reach[2]; c <= reach[2] && !out(i, j, k); ++c)
          for (int b = -reach[1]; b <= reach[1] && !out(i, j, k); ++b)
            for (int a = -reach[0]; a <= reach[0]; ++a) {
              if (!m.grid.inside(i + a, j + b, k + c) || !m(i + a, j + b, k + c)) continue;
              if (h[2] * h[2] * c * c + (h[1] * h[1] * b * b + h[0] * h[0] * a * a) <= r2) {
                out(i, j, k) = 1;
                break;
              }
            }
  return out;
}

Mask reference_erode(const Mask& m, double radius_mm) { return mask_not(reference_dilate(mask_not(m), radius_mm)); }

// Connected components by a voxel-by-voxel flood fill, labels by first voxel in memory.
Components reference_components(const Mask& mask) {
  Components c;
  c.labels = Volume<std::int32_t>(mask.grid, 0);
  c.sizes.push_back(0);
  std::vector<std::size_t> stack;
  for (std::size_t start = 0; start < mask.data.size(); ++start) {
    if (!mask.data[start] || c.labels.data[start]) continue;
    const auto next = std::int32_t(c.sizes.size());
    std::size_t size = 0;
    stack.push_back(start);
    c.labels.data[start] = next;
    while (!stack.empty()) {
      const std::size_t p = stack.back();
      stack.pop_back();
      ++size;
      const auto& d = mask.grid.dim;
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

// Holes: background not connected to the border (through background, 6-connected).
Mask reference_fill_holes(const Mask& mask) {
  Components bg = reference_components(mask_not(mask));
  std::vector<char> outside(bg.sizes.size(), 0);
  const auto& d = mask.grid.dim;
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (i == 0 || j == 0 || k == 0 || i == d[0] - 1 || j == d[1] - 1 || k == d[2] - 1)
          outside[std::size_t(bg.labels(i, j, k))] = 1;
  Mask out(mask.grid, 1);
  for (std::size_t i = 0; i < out.data.size(); ++i)
    if (!mask.data[i] && outside[std::size_t(bg.labels.data[i])]) out.data[i] = 0;
  return out;
}

// Slice by slice along each axis in turn (4-connected flood from the slice's border through
// background), each axis on the result of the previous one.
Mask reference_fill_holes_2d(const Mask& mask) {
  Mask out = mask;
  const auto& d = mask.grid.dim;
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = axis == 0 ? 1 : 0, a2 = axis == 2 ? 1 : 2;
    Mask filled = out;
    for (std::int64_t s = 0; s < d[axis]; ++s) {
      std::vector<std::uint8_t> seen(std::size_t(d[a1] * d[a2]), 0);
      std::vector<std::pair<std::int64_t, std::int64_t>> stack;
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
    out = filled;
  }
  return out;
}

std::size_t differences(const Mask& a, const Mask& b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) n += (a.data[i] != 0) != (b.data[i] != 0);
  return n;
}

const std::vector<Eigen::Vector3d> kSpacings = {
    {1.0, 1.0, 1.0}, {0.9, 1.1, 1.3}, {0.4, 0.4, 1.5}, {1.00001, 0.99999, 1.0}, {2.0, 2.0, 2.0}};

}  // namespace

TEST_CASE("filters: dilate and erode equal the ball by definition, one radius or several", "[unit][filters]") {
  std::mt19937 rng(7);
  const std::vector<double> radii = {0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0};
  for (const auto& sp : kSpacings)
    for (int trial = 0; trial < 2; ++trial) {
      const Grid g = grid_of({29, 23, 19}, sp);
      const Mask m = random_mask(g, rng, 6, trial == 0 ? 0.0 : 0.02);
      INFO("spacing " << sp.transpose() << " trial " << trial);
      // Several radii at once (the distance transform for all of them) and one at a time (rows
      // of the ball for small balls).
      const std::vector<Mask> all_d = dilate(m, radii), all_e = erode(m, radii);
      for (std::size_t r = 0; r < radii.size(); ++r) {
        INFO("radius " << radii[r]);
        const Mask ref_d = reference_dilate(m, radii[r]), ref_e = reference_erode(m, radii[r]);
        CHECK(differences(dilate(m, radii[r]), ref_d) == 0);
        CHECK(differences(all_d[r], ref_d) == 0);
        CHECK(differences(erode(m, radii[r]), ref_e) == 0);
        CHECK(differences(all_e[r], ref_e) == 0);
      }
      CHECK(differences(open(m, 2.0), reference_dilate(reference_erode(m, 2.0), 2.0)) == 0);
      CHECK(differences(close(m, 2.0), reference_erode(reference_dilate(m, 2.0), 2.0)) == 0);
    }
  // Empty and full masks, and a mask touching the grid's border.
  const Grid g = grid_of({12, 9, 7}, Eigen::Vector3d(1, 1, 1));
  CHECK(count(dilate(Mask(g, 0), 3.0)) == 0);
  CHECK(count(erode(Mask(g, 0), 3.0)) == 0);
  CHECK(count(dilate(Mask(g, 1), 3.0)) == g.voxels());
  CHECK(count(erode(Mask(g, 1), 3.0)) == g.voxels());  // beyond the grid is not background
  Mask corner(g, 0);
  corner(0, 0, 0) = 1;
  CHECK(count(dilate(corner, 1.0)) == 4);
}

TEST_CASE("filters: dilate_box equals the box by its definition", "[unit][filters]") {
  std::mt19937 rng(5);
  for (const int radius : {0, 1, 2, 5, 40}) {
    const Grid g = grid_of({31, 17, 13}, Eigen::Vector3d(1, 1, 1));
    const Mask m = random_mask(g, rng, 3, 0.01);
    const auto& d = g.dim;
    Mask ref(g, 0);  // every voxel with a set voxel within `radius` along each axis
    for (std::int64_t k = 0; k < d[2]; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i)
          for (std::int64_t c = std::max<std::int64_t>(0, k - radius); c <= std::min(d[2] - 1, k + radius); ++c)
            for (std::int64_t b = std::max<std::int64_t>(0, j - radius); b <= std::min(d[1] - 1, j + radius); ++b)
              for (std::int64_t a = std::max<std::int64_t>(0, i - radius); a <= std::min(d[0] - 1, i + radius); ++a)
                if (m(a, b, c)) ref(i, j, k) = 1;
    INFO("radius " << radius);
    CHECK((radius == 0 ? count(ref) == count(m) : count(ref) > count(m)));
    CHECK(differences(dilate_box(m, radius), ref) == 0);
  }
}

TEST_CASE("filters: distance_to is the exact Euclidean distance", "[unit][filters]") {
  std::mt19937 rng(11);
  for (const auto& sp : kSpacings) {
    const Grid g = grid_of({21, 17, 13}, sp);
    const Mask m = random_mask(g, rng, 3, 0.002);
    const Image dist = distance_to(m);
    const auto& d = g.dim;
    double worst = 0;
    for (std::int64_t k = 0; k < d[2]; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          double best = 1e300;
          for (std::int64_t z = 0; z < d[2]; ++z)
            for (std::int64_t y = 0; y < d[1]; ++y)
              for (std::int64_t x = 0; x < d[0]; ++x)
                if (m(x, y, z))
                  best = std::min(best, sp[2] * sp[2] * double((k - z) * (k - z)) +
                                            (sp[1] * sp[1] * double((j - y) * (j - y)) +
                                             sp[0] * sp[0] * double((i - x) * (i - x))));
          worst = std::max(worst, std::abs(double(dist(i, j, k)) - std::sqrt(best)));
          if (sp == Eigen::Vector3d(1, 1, 1)) REQUIRE(dist(i, j, k) == static_cast<float>(std::sqrt(best)));
        }
    INFO("spacing " << sp.transpose());
    CHECK(worst < 1e-5);
  }
  CHECK(distance_to(Mask(grid_of({5, 4, 3}, Eigen::Vector3d(1, 1, 1)), 0)).data[0] == 1e9f);
}

TEST_CASE("filters: components, largest component, holes in 3D and by slices equal flood fills", "[unit][filters]") {
  std::mt19937 rng(3);
  for (const auto& sp : kSpacings)
    for (double fill : {0.0, 0.05, 0.3, 0.6}) {
      const Grid g = grid_of({31, 17, 11}, sp);
      const Mask m = random_mask(g, rng, 8, fill);
      INFO("fill " << fill);
      const Components c = connected_components(m), ref = reference_components(m);
      CHECK(c.sizes == ref.sizes);
      CHECK(c.labels.data == ref.labels.data);
      CHECK(c.sizes.size() > 1);
      CHECK(differences(fill_holes(m), reference_fill_holes(m)) == 0);
      CHECK(differences(fill_holes_2d(m), reference_fill_holes_2d(m)) == 0);
      const auto best = std::max_element(ref.sizes.begin() + 1, ref.sizes.end()) - ref.sizes.begin();
      Mask largest(g, 0);
      for (std::size_t i = 0; i < largest.data.size(); ++i) largest.data[i] = ref.labels.data[i] == best;
      CHECK(differences(largest_component(m), largest) == 0);
    }
  // A closed shell: its inside is a hole in 3D; a tube open at both ends is filled by slices only.
  const Grid g = grid_of({11, 11, 11}, Eigen::Vector3d(1, 1, 1));
  Mask shell(g, 0), tube(g, 0);
  for (std::int64_t k = 2; k <= 8; ++k)
    for (std::int64_t j = 2; j <= 8; ++j)
      for (std::int64_t i = 2; i <= 8; ++i) {
        const bool edge = i == 2 || i == 8 || j == 2 || j == 8;
        shell(i, j, k) = edge || k == 2 || k == 8;
        tube(i, j, k) = edge;
      }
  CHECK(count(fill_holes(shell)) == 7 * 7 * 7);
  CHECK(count(fill_holes(tube)) == count(tube));
  CHECK(count(fill_holes_2d(tube)) == 7 * 7 * 7);
}

TEST_CASE("filters: select_ranks puts at each rank what a full sort puts there", "[unit][filters]") {
  std::mt19937 rng(7);
  for (const std::size_t n : {1u, 2u, 17u, 1000u}) {
    std::vector<float> values(n);
    // Few distinct values (ties) and both zeros.
    std::uniform_int_distribution<int> pick(-5, 5);
    for (auto& x : values) x = pick(rng) == 0 ? -0.0f : float(pick(rng));
    std::vector<float> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const std::vector<std::size_t> ranks = {0, n / 3, n / 3, n / 2, n - 1};
    std::vector<float> v = values;
    select_ranks(v, ranks);
    for (const std::size_t r : ranks) {
      INFO("n " << n << " rank " << r);
      CHECK(v[r] == sorted[r]);
    }
    CHECK(std::is_permutation(v.begin(), v.end(), values.begin()));
  }
}
