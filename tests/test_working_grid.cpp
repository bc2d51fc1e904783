// The working grid (include/tmsplan/working_grid.hpp): the grid it chooses, identity on ~1 mm
// inputs, and masks brought back to a 0.4 x 0.4 x 1.5 mm grid without staircase, against an
// analytic sphere.
#include <catch2/catch.hpp>

#include <cmath>

#include <Eigen/Geometry>

#include "tmsplan/filters.hpp"
#include "tmsplan/working_grid.hpp"

using namespace tmsplan;

namespace {

// An oblique grid of the given spacing and size (storage order deliberately not RAS).
Grid oblique_grid(const Eigen::Vector3d& spacing, const std::array<std::int64_t, 3>& dim) {
  Grid g;
  g.dim = dim;
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  const Eigen::Matrix3d rot = Eigen::AngleAxisd(0.3, Eigen::Vector3d(0.2, -1, 0.4).normalized()).toRotationMatrix();
  Eigen::Matrix3d axes;
  axes << -1, 0, 0, 0, 0, 1, 0, 1, 0;  // i: right -> left, j: inferior -> superior, k: posterior -> anterior
  m.topLeftCorner<3, 3>() = rot * axes * spacing.asDiagonal();
  // Grid centre at the world origin plus a sub-voxel offset.
  const Eigen::Vector3d half(double(dim[0] - 1) / 2, double(dim[1] - 1) / 2, double(dim[2] - 1) / 2);
  m.topRightCorner<3, 1>() = Eigen::Vector3d(0.13, -0.27, 0.31) - m.topLeftCorner<3, 3>() * half;
  g.vox2ras = RasMatrix(m);
  return g;
}

const Eigen::Vector3d kCentre(0.6, -1.1, 0.35);

// Signed distance (mm) of each voxel centre from the sphere's surface (negative inside).
Image sphere_distance(const Grid& g, double radius) {
  Image d(g, 0.0f);
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i)
        d(i, j, k) = static_cast<float>((g.ras(i, j, k).v - kCentre).norm() - radius);
  return d;
}

Mask inside(const Image& distance) {
  Mask m(distance.grid, 0);
  for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = distance.data[i] < 0 ? 1 : 0;
  return m;
}

// Largest |distance to the surface| over the voxels where `m` and the truth differ; their count.
std::pair<double, std::size_t> worst_error(const Mask& m, const Image& distance) {
  double worst = 0.0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < m.data.size(); ++i)
    if (bool(m.data[i]) != (distance.data[i] < 0)) {
      worst = std::max(worst, double(std::abs(distance.data[i])));
      ++n;
    }
  return {worst, n};
}

}  // namespace

TEST_CASE("the working grid coarsens only sub-millimetre axes and keeps the world box", "[workgrid][unit]") {
  const Grid fine = oblique_grid({0.4, 0.4, 1.5}, {200, 200, 60});
  const Grid work = workgrid::choose(fine);
  CHECK(work.dim == std::array<std::int64_t, 3>{80, 80, 60});
  CHECK(work.spacing_mm().isApprox(Eigen::Vector3d(1.0, 1.0, 1.5), 1e-9));
  CHECK_FALSE(workgrid::is_identity(fine, work));
  // The outer corner of the first voxel is the same point in both grids (same world box start).
  auto corner = [](const Grid& g) -> Eigen::Vector3d {
    return (g.vox2ras.m * Eigen::Vector4d(-0.5, -0.5, -0.5, 1)).head<3>();
  };
  CHECK((corner(fine) - corner(work)).norm() < 1e-9);
  // The working box ends within one working voxel beyond the input's.
  auto far = [](const Grid& g) -> Eigen::Vector3d {
    return (g.vox2ras.m * Eigen::Vector4d(g.dim[0] - 0.5, g.dim[1] - 0.5, g.dim[2] - 0.5, 1)).head<3>();
  };
  CHECK((far(fine) - far(work)).norm() < 1e-9);  // 200 x 0.4 = 80 x 1.0 exactly

  // About 1 mm (and coarser) inputs: the grid itself, every function the identity.
  for (const Eigen::Vector3d& sp :
       {Eigen::Vector3d(1, 1, 1), Eigen::Vector3d(0.94, 1, 1.2), Eigen::Vector3d(2, 2, 2)}) {
    const Grid g = oblique_grid(sp, {30, 20, 10});
    const Grid w = workgrid::choose(g);
    CHECK(workgrid::is_identity(g, w));
    CHECK(w.dim == g.dim);
    CHECK(w.vox2ras.m == g.vox2ras.m);
    const Image d = sphere_distance(g, 6.0);
    const Mask m = inside(d);
    CHECK(workgrid::to_work(d, w).data == d.data);
    CHECK(workgrid::mask_to_work(m, w).data == m.data);
    CHECK(workgrid::mask_to_input(m, g).data == m.data);
    CHECK(workgrid::image_to_input(d, g).data == d.data);
  }
}

TEST_CASE("to_work keeps uniform and linear images (anti-aliased averaging, no shift)", "[workgrid][unit]") {
  const Grid fine = oblique_grid({0.4, 0.5, 1.5}, {51, 40, 12});
  const Grid work = workgrid::choose(fine);
  REQUIRE(work.dim == std::array<std::int64_t, 3>{21, 20, 12});
  Image flat(fine, 7.5f), ramp(fine, 0.0f);
  const Eigen::Vector3d gradient(0.3, -0.2, 0.5);
  for (std::int64_t k = 0; k < fine.dim[2]; ++k)
    for (std::int64_t j = 0; j < fine.dim[1]; ++j)
      for (std::int64_t i = 0; i < fine.dim[0]; ++i)
        ramp(i, j, k) = static_cast<float>(gradient.dot(fine.ras(i, j, k).v));
  const Image wf = workgrid::to_work(flat, work), wr = workgrid::to_work(ramp, work);
  REQUIRE(wf.grid.same_as(work, 1e-9));
  for (float v : wf.data) REQUIRE(v == Approx(7.5f).epsilon(1e-6));
  // A linear function's box average is its value at the working voxel's centre (away from the
  // edges, where the edge value continues).
  double worst = 0;
  for (std::int64_t k = 0; k < work.dim[2]; ++k)
    for (std::int64_t j = 2; j < work.dim[1] - 2; ++j)
      for (std::int64_t i = 2; i < work.dim[0] - 2; ++i)
        worst = std::max(worst, std::abs(double(wr(i, j, k)) - gradient.dot(work.ras(i, j, k).v)));
  CHECK(worst < 1e-4);
}

TEST_CASE("a sphere on a 0.4 x 0.4 x 1.5 mm grid comes back from the working grid without staircase",
          "[workgrid][unit]") {
  const Grid fine = oblique_grid({0.4, 0.4, 1.5}, {200, 200, 60});
  const Grid work = workgrid::choose(fine);
  const double radius = 25.0;
  const Image truth_distance = sphere_distance(fine, radius);
  const Mask truth = inside(truth_distance);

  SECTION("fractions: the boundary within half a fine voxel") {
    const Image fraction = workgrid::fraction_to_work(truth, work);
    const Mask back = workgrid::fraction_to_input(fraction, fine);
    const auto [worst, n] = worst_error(back, truth_distance);
    INFO("misclassified " << n << ", farthest " << worst << " mm from the surface");
    CHECK(dice(back, truth) >= 0.98);
    CHECK(worst <= 0.2);  // half of the 0.4 mm in-plane spacing
  }
  SECTION("binary working mask: smoothed indicator, closer than nearest neighbour") {
    const Mask wmask = workgrid::mask_to_work(truth, work);
    const Mask back = workgrid::mask_to_input(wmask, fine);
    const Labels nearest = workgrid::labels_to_input_nearest(wmask, fine);
    const auto [worst, n] = worst_error(back, truth_distance);
    const auto [worst_nn, n_nn] = worst_error(nearest, truth_distance);
    INFO("smoothed: " << n << " misclassified, farthest " << worst << " mm; nearest neighbour: " << n_nn << ", "
                      << worst_nn << " mm");
    CHECK(dice(back, truth) >= 0.98);
    CHECK(worst <= 0.5);  // half a working voxel: a binary 1 mm mask holds no finer position
    CHECK(n < n_nn);      // the staircase of nearest neighbour is gone
    CHECK(worst < worst_nn);
  }
  SECTION("labels: each of two nested spheres by its largest fraction") {
    Labels two(fine, 0);
    const Image inner_distance = sphere_distance(fine, 12.0);
    for (std::size_t i = 0; i < two.data.size(); ++i)
      two.data[i] = inner_distance.data[i] < 0 ? 2 : truth.data[i] ? 1 : 0;
    const Labels w = workgrid::labels_to_work(two, work);
    const Image wd_outer = sphere_distance(work, radius), wd_inner = sphere_distance(work, 12.0);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < w.data.size(); ++i) {
      // Only voxels whose centre is well inside one region must carry its label.
      const float o = wd_outer.data[i], in = wd_inner.data[i];
      if (std::abs(o) < 0.75f || std::abs(in) < 0.75f) continue;
      const int expect = in < 0 ? 2 : o < 0 ? 1 : 0;
      wrong += w.data[i] != expect;
    }
    CHECK(wrong == 0);
  }
}
