// Surfaces and cortical maps: analytic shapes with known answers (sphere, torus, oblique mirrored
// grids, nested spheres, a grooved brain), GIfTI round trips (and nibabel when present), and a
// real head from ../shared/data.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "support.hpp"
#include "tmsplan/brain.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"
#include "tmsplan/surface.hpp"

using namespace tmsplan;
namespace fs = std::filesystem;

namespace {

Grid cube_grid(int n, const Eigen::Matrix4d& vox2ras) {
  Grid g;
  g.dim = {n, n, n};
  g.vox2ras = RasMatrix(vox2ras);
  return g;
}

// 1 mm grid of n^3 voxels centred on the world origin.
Eigen::Matrix4d centred(int n, double spacing = 1.0) {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity() * spacing;
  m(3, 3) = 1;
  m.block<3, 1>(0, 3) = Eigen::Vector3d::Constant(-0.5 * (n - 1) * spacing);
  return m;
}

Mask shape(const Grid& g, const std::function<bool(const Eigen::Vector3d&)>& inside) {
  Mask m(g, 0);
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) m(i, j, k) = inside(g.ras(i, j, k).v) ? 1 : 0;
  return m;
}

double mean_normal_dot(const Mesh& mesh, const Eigen::Vector3d& centre) {
  const auto normals = vertex_normals(mesh);
  double sum = 0;
  for (std::size_t v = 0; v < mesh.vertices.size(); ++v)
    sum += normals[v].dot((mesh.vertices[v] - centre).normalized());
  return sum / double(mesh.vertices.size());
}

bool have_nibabel() {
  if (!fs::exists("/usr/bin/python3")) return false;
  return std::system("/usr/bin/python3 -c 'import nibabel' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("sphere mask: closed sphere at the analytic radius with outward normals", "[surface][unit]") {
  const Grid g = cube_grid(64, centred(64));
  const double radius = 20.0;
  const Mask m = shape(g, [&](const Eigen::Vector3d& p) { return p.norm() < radius; });
  MeshReport report;
  const Mesh mesh = mesh_from_mask(m, MeshOptions{}, &report);
  CHECK(euler_characteristic(mesh) == 2);
  CHECK(report.euler == 2);
  const MeshTopology top = mesh_topology(mesh);
  CHECK(top.closed_manifold());
  CHECK(top.components == 1);
  CHECK(count_self_intersections(mesh) == 0);
  CHECK(mean_normal_dot(mesh, Eigen::Vector3d::Zero()) > 0.9);
  // Radius error: the digital sphere itself has one-voxel pimples at its poles (0.5 voxel off),
  // so the maximum is bounded by a little more than half a voxel, the bulk well below.
  std::vector<double> err;
  for (const auto& v : mesh.vertices) err.push_back(std::abs(v.norm() - radius));
  std::sort(err.begin(), err.end());
  double mean = 0;
  for (double e : err) mean += e / double(err.size());
  CHECK(mean < 0.15);
  CHECK(err[std::size_t(0.99 * double(err.size()))] < 0.5);
  CHECK(err.back() < 0.6);
  CHECK(enclosed_volume_ml(mesh) == Approx(4.0 / 3.0 * M_PI * radius * radius * radius / 1000.0).epsilon(0.02));
  const BoundaryDistance b = distance_to_mask_boundary(mesh, m);
  CHECK(b.max_mm < 1.0);
  CHECK(b.mean_mm < 0.2);
}

TEST_CASE("ellipsoid on an anisotropic grid", "[surface][unit]") {
  Eigen::Matrix4d v2r = Eigen::Matrix4d::Identity();
  v2r.diagonal() << 0.8, 1.0, 1.5, 1.0;
  v2r.block<3, 1>(0, 3) = Eigen::Vector3d(-39.5 * 0.8, -31.5, -21.5 * 1.5);
  Grid g;
  g.dim = {80, 64, 44};
  g.vox2ras = RasMatrix(v2r);
  const Eigen::Vector3d radii(22, 18, 26);
  const Mask m = shape(g, [&](const Eigen::Vector3d& p) { return p.cwiseQuotient(radii).norm() < 1.0; });
  const Mesh mesh = mesh_from_mask(m);
  CHECK(euler_characteristic(mesh) == 2);
  CHECK(is_closed_manifold(mesh));
  CHECK(count_self_intersections(mesh) == 0);
  CHECK(mean_normal_dot(mesh, Eigen::Vector3d::Zero()) > 0.9);
  CHECK(enclosed_volume_ml(mesh) == Approx(4.0 / 3.0 * M_PI * radii.prod() / 1000.0).epsilon(0.03));
  CHECK(distance_to_mask_boundary(mesh, m).max_mm < 1.0);
}

TEST_CASE("torus mask: Euler 0, or 2 once its handle is filled", "[surface][unit]") {
  const Grid g = cube_grid(64, centred(64));
  const Mask m = shape(g, [](const Eigen::Vector3d& p) {
    const double q = std::hypot(p.x(), p.y()) - 16.0;
    return q * q + p.z() * p.z() < 36.0;
  });
  const Mesh torus = mesh_from_mask(m);
  CHECK(euler_characteristic(torus) == 0);
  CHECK(is_closed_manifold(torus));
  CHECK(count_self_intersections(torus) == 0);
  CHECK(mean_normal_dot(torus, Eigen::Vector3d::Zero()) > 0.0);  // outward on the outer rim dominates

  MeshOptions o;
  o.genus_zero = true;
  MeshReport report;
  const Mesh sphere = mesh_from_mask(m, o, &report);
  CHECK(euler_characteristic(sphere) == 2);
  CHECK(is_closed_manifold(sphere));
  CHECK(count_self_intersections(sphere) == 0);
  // The membrane spans the hole (radius 10 mm) once: about pi * 10^2 voxels, not the whole hole.
  CHECK(report.filled_handle_voxels > 250);
  CHECK(report.filled_handle_voxels < 450);
}

TEST_CASE("oblique LPS-like grid with negative determinant: same surface, still outward", "[surface][unit]") {
  // LPS storage (i runs to the left, j to the back) with the slices stacked downwards, rotated:
  // vox2ras has a negative determinant. The sphere is defined in world mm.
  const Eigen::Matrix3d rot = (Eigen::AngleAxisd(0.4, Eigen::Vector3d(1, 2, 3).normalized())).toRotationMatrix();
  Eigen::Matrix4d v2r = Eigen::Matrix4d::Identity();
  v2r.topLeftCorner<3, 3>() = rot * Eigen::Vector3d(-1.0, -1.0, -1.0).asDiagonal();
  v2r.block<3, 1>(0, 3) = -v2r.topLeftCorner<3, 3>() * Eigen::Vector3d::Constant(31.5);
  REQUIRE(v2r.topLeftCorner<3, 3>().determinant() < 0);
  const Eigen::Vector3d centre(3.0, -2.0, 1.5);
  const Grid g = cube_grid(64, v2r);
  const Mask m = shape(g, [&](const Eigen::Vector3d& p) { return (p - centre).norm() < 18.0; });
  const Mesh mesh = mesh_from_mask(m);
  CHECK(euler_characteristic(mesh) == 2);
  CHECK(is_closed_manifold(mesh));
  CHECK(count_self_intersections(mesh) == 0);
  CHECK(mean_normal_dot(mesh, centre) > 0.9);
  CHECK(enclosed_volume_ml(mesh) > 0);
  CHECK(enclosed_volume_ml(mesh) == Approx(4.0 / 3.0 * M_PI * 18.0 * 18.0 * 18.0 / 1000.0).epsilon(0.03));
  double mean_radius = 0;
  for (const auto& v : mesh.vertices) mean_radius += (v - centre).norm() / double(mesh.vertices.size());
  CHECK(mean_radius == Approx(18.0).margin(0.3));
  CHECK(distance_to_mask_boundary(mesh, m).max_mm < 1.0);
}

TEST_CASE("ambiguous configurations and random masks always give closed oriented manifolds", "[surface][unit]") {
  // Two background voxels touching only at a corner inside a block: a 26-connected cavity, one
  // sheet (the tube case), plus the outer sheet.
  Grid g;
  g.dim = {6, 6, 6};
  Mask block(g, 0);
  for (int k = 1; k < 5; ++k)
    for (int j = 1; j < 5; ++j)
      for (int i = 1; i < 5; ++i) block(i, j, k) = 1;
  block(2, 2, 2) = 0;
  block(3, 3, 3) = 0;
  MeshOptions raw;
  raw.fill_holes = false;
  raw.smoothing_iterations = 0;
  const Mesh cavity = mesh_from_mask(block, raw);
  CHECK(is_closed_manifold(cavity));
  CHECK(mesh_topology(cavity).components == 2);
  CHECK(euler_characteristic(cavity) == 4);

  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  int failures = 0;
  for (int trial = 0; trial < 120; ++trial) {
    Grid rg;
    rg.dim = {9, 9, 9};
    Mask m(rg, 0);
    const double p = 0.3 + 0.1 * (trial % 5);
    for (auto& x : m.data) x = u(rng) < p ? 1 : 0;
    if (count(m) == 0) continue;
    MeshOptions o;
    o.smoothing_iterations = trial % 3 == 0 ? 0 : 10;
    o.keep_largest_component = trial % 2 == 0;
    o.genus_zero = trial % 4 == 0;
    const Mesh mesh = mesh_from_mask(m, o);
    const MeshTopology top = mesh_topology(mesh);
    bool ok = top.closed_manifold() && enclosed_volume_ml(mesh) > 0;
    if (o.genus_zero) ok = ok && euler_characteristic(mesh) == 2 && top.components == 1;
    if (o.smoothing_iterations == 0) ok = ok && count_self_intersections(mesh) == 0;
    failures += ok ? 0 : 1;
  }
  CHECK(failures == 0);
}

TEST_CASE("mesh checks catch broken meshes", "[surface][unit]") {
  Mesh tet;
  tet.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  tet.triangles = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
  CHECK(is_closed_manifold(tet));
  CHECK(euler_characteristic(tet) == 2);
  CHECK(enclosed_volume_ml(tet) == Approx(1.0 / 6.0 / 1000.0));
  Mesh open = tet;
  open.triangles.pop_back();
  CHECK(mesh_topology(open).boundary_edges == 3);
  CHECK_FALSE(is_closed_manifold(open));
  Mesh flipped = tet;
  std::swap(flipped.triangles[0][1], flipped.triangles[0][2]);
  CHECK(mesh_topology(flipped).misoriented_edges == 3);
  // Two triangles crossing each other.
  Mesh cross;
  cross.vertices = {{0, 0, 0}, {2, 0, 0}, {0, 2, 0}, {0.5, 0.5, -1}, {0.5, 0.5, 1}, {1.5, 1.5, 0.5}};
  cross.triangles = {{0, 1, 2}, {3, 4, 5}};
  CHECK(count_self_intersections(cross) == 1);
  CHECK(count_self_intersections(tet) == 0);
  Mesh bad = tet;
  bad.triangles[0][0] = 17;
  CHECK_THROWS_AS(euler_characteristic(bad), Error);
  CHECK_THROWS_AS(mesh_from_mask(Mask(cube_grid(4, Eigen::Matrix4d::Identity()), 0)), Error);
}

TEST_CASE("meshing does not depend on the thread count", "[surface][unit]") {
  const Grid g = cube_grid(48, centred(48));
  const Mask m =
      shape(g, [](const Eigen::Vector3d& p) { return p.norm() < 15 || (p - Eigen::Vector3d(12, 0, 0)).norm() < 8; });
  const int saved = threads();
  set_threads(1);
  const Mesh a = mesh_from_mask(m);
  set_threads(2);
  const Mesh b = mesh_from_mask(m);
  set_threads(saved);
  REQUIRE(a.vertices.size() == b.vertices.size());
  CHECK(a.triangles == b.triangles);
  bool same = true;
  for (std::size_t v = 0; v < a.vertices.size(); ++v) same = same && a.vertices[v] == b.vertices[v];
  CHECK(same);
}

TEST_CASE("GIfTI write/read round trip, refusals, and nibabel when present", "[surface][unit]") {
  const std::string dir = testing::temp_dir("surface-gifti");
  const Grid g = cube_grid(32, centred(32));
  const Mesh mesh = mesh_from_mask(shape(g, [](const Eigen::Vector3d& p) { return p.norm() < 10; }));
  for (const bool compress : {true, false}) {
    const std::string path = dir + (compress ? "/z.surf.gii" : "/b.surf.gii");
    GiftiOptions o;
    o.compress = compress;
    o.description = "test ]]> sphere";
    write_gifti(path, mesh, o);
    const Mesh back = read_gifti(path);
    REQUIRE(back.vertices.size() == mesh.vertices.size());
    CHECK(back.triangles == mesh.triangles);
    double worst = 0;
    for (std::size_t v = 0; v < mesh.vertices.size(); ++v)
      worst = std::max(worst, (back.vertices[v] - mesh.vertices[v]).norm());
    CHECK(worst < 1e-5);
    CHECK_THROWS_AS(write_gifti(path, mesh, false), Error);  // exists, no force
    CHECK_NOTHROW(write_gifti(path, mesh, true));
  }
  // Same mesh, same bytes.
  write_gifti(dir + "/again.surf.gii", mesh, false);
  CHECK(read_file(dir + "/z.surf.gii") == read_file(dir + "/again.surf.gii"));
  CHECK_THROWS_AS(read_gifti(dir + "/missing.surf.gii"), Error);
  { std::ofstream(dir + "/junk.surf.gii") << "<GIFTI><DataArray Intent=\"NIFTI_INTENT_POINTSET\"></GIFTI>"; }
  CHECK_THROWS_AS(read_gifti(dir + "/junk.surf.gii"), Error);
  CHECK_THROWS_AS(write_gifti(dir + "/empty.surf.gii", Mesh{}, true), Error);

  if (!have_nibabel()) {
    WARN("/usr/bin/python3 with nibabel not found: nibabel load check skipped");
    return;
  }
  for (const char* name : {"z.surf.gii", "b.surf.gii"}) {
    const auto r = testing::run(
        "/usr/bin/python3 -c \"import nibabel as nib, numpy as np; g=nib.load('" + dir + "/" + name +
        "'); p=g.agg_data('NIFTI_INTENT_POINTSET'); t=g.agg_data('NIFTI_INTENT_TRIANGLE'); "
        "print(p.shape[0], t.shape[0], t.max(), p.dtype, t.dtype, '%.3f' % np.linalg.norm(p, axis=1).mean())\"");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    double mean_radius = 0;
    for (const auto& v : mesh.vertices) mean_radius += v.norm() / double(mesh.vertices.size());
    CHECK(r.out == fmt::format("{} {} {} float32 int32 {:.3f}\n", mesh.vertices.size(), mesh.triangles.size(),
                               mesh.vertices.size() - 1, mean_radius));
  }
}

TEST_CASE("scalp distance map on nested spheres", "[surface][unit]") {
  const Grid g = cube_grid(96, centred(96));
  const double head_r = 40.0;
  const Mask head = shape(g, [&](const Eigen::Vector3d& p) { return p.norm() < head_r; });
  const Mask cortex = shape(g, [&](const Eigen::Vector3d& p) { return p.norm() < 30.0 && p.norm() >= 26.0; });
  const Image map = scalp_distance_map(head, cortex);
  double worst = 0, bias = 0;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < 96; ++k)
    for (std::int64_t j = 0; j < 96; ++j)
      for (std::int64_t i = 0; i < 96; ++i) {
        const float value = map(i, j, k);
        if (!cortex(i, j, k)) {
          if (value != 0.0f) worst = 1e9;
          continue;
        }
        const double truth = head_r - g.ras(i, j, k).v.norm();
        worst = std::max(worst, std::abs(value - truth));
        bias += value - truth;
        ++n;
      }
  REQUIRE(n > 1000);
  CHECK(worst < 0.5);
  // The nearest voxel centre outside is picked among many, so it lies a little beyond the analytic
  // surface; with the half-voxel correction the map reads ~0.4 mm short on deep voxels.
  CHECK(std::abs(bias / double(n)) < 0.45);
  CHECK_THROWS_AS(scalp_distance_map(head, Mask(cube_grid(10, centred(10)), 1)), Error);
}

TEST_CASE("gyral depth map: crowns near 0, groove bottom at the groove depth", "[surface][unit]") {
  // A ball of brain with a 2 mm wide, 10 mm deep slot cut from the top, and a 3 mm cortex.
  const Grid g = cube_grid(90, centred(90));
  const double r = 35.0, depth = 10.0;
  auto in_slot = [&](const Eigen::Vector3d& p) {
    return std::abs(p.x()) < 1.0 && std::abs(p.y()) < 15.0 && p.z() > r - depth - 1e-9;
  };
  const Mask brain = shape(g, [&](const Eigen::Vector3d& p) { return p.norm() < r && !in_slot(p); });
  const Mask gm = mask_and(brain, mask_not(erode(brain, 3.0)));
  const Image map = gyral_depth_map(brain, gm, 12.0);
  auto at = [&](const Eigen::Vector3d& p) {
    const Eigen::Vector3d ijk = ras_to_voxel(g.vox2ras, RasPoint(p)).v;
    return map(std::lround(ijk[0]), std::lround(ijk[1]), std::lround(ijk[2]));
  };
  // Crown: the outermost grey matter away from the slot.
  CHECK(at(Eigen::Vector3d(0, -20, 28.3)) < 1.5);  // near the top, off the slot along y
  CHECK(at(Eigen::Vector3d(34, 0, 0)) < 1.0);      // the equator
  // Bottom of the slot: the first grey matter below it, 10 mm under the hull.
  const double bottom = at(Eigen::Vector3d(0, 0, r - depth - 1.0));
  CHECK(bottom == Approx(depth).margin(1.5));
  // Walls of the slot half-way down: about half the depth.
  CHECK(at(Eigen::Vector3d(1.5, 0, r - depth / 2)) == Approx(depth / 2).margin(1.5));
  // Off the grey matter: 0.
  CHECK(at(Eigen::Vector3d(0, 0, 0)) == 0.0f);
}

TEST_CASE("region summaries", "[surface][unit]") {
  Grid g = cube_grid(4, Eigen::Matrix4d::Identity());
  Image map(g, 0.0f);
  Labels atlas(g, 0);
  Mask within(g, 1);
  for (std::size_t i = 0; i < map.data.size(); ++i) {
    map.data[i] = float(i);
    atlas.data[i] = i < 10 ? 4 : i < 20 ? 9 : 0;
  }
  within.data[0] = 0;
  const auto s = region_summary(map, atlas, {9, 4, 46}, &within);
  REQUIRE(s.size() == 3);
  CHECK(s[0].label == 9);
  CHECK(s[0].count == 10);
  CHECK(s[0].mean == Approx(14.5));
  CHECK(s[0].median == Approx(14.5));
  CHECK(s[0].min == 10.0);
  CHECK(s[0].max == 19.0);
  CHECK(s[1].count == 9);  // voxel 0 is outside `within`
  CHECK(s[1].median == Approx(5.0));
  CHECK(s[2].count == 0);
  CHECK(std::isnan(s[2].mean));
  const auto all = region_summary(map, to_image(Mask(g, 0)) /* all zero: nothing */, {}, nullptr);
  CHECK(all.empty());
  Image float_atlas(g, 0.0f);
  for (std::size_t i = 0; i < map.data.size(); ++i) float_atlas.data[i] = float(atlas.data[i]) + 0.1f;
  const auto f = region_summary(map, float_atlas, {});
  REQUIRE(f.size() == 2);
  CHECK(f[0].label == 4);
  CHECK(f[0].count == 10);
  CHECK_THROWS_AS(region_summary(map, Labels(cube_grid(3, Eigen::Matrix4d::Identity()), 0), {}), Error);
}

TEST_CASE("real head: scalp is a sphere close to the head mask, pial/white closed", "[surface][data]") {
  const std::string data = testing::shared_data();
  if (data.empty()) {
    testing::skip("../shared/data not found (set TMSPLAN_SHARED_DATA): real-head surface test");
  }
  const Image t1 = read_image(data + "/philips-mprage/T1w.nii.gz");
  // The pipeline's head mask (skull-strip's head_mask: threshold half-way between background and
  // skin, largest piece, small gaps closed, cavities filled).
  const Mask head = head_mask(t1, "T1w.nii.gz");

  const auto start = std::chrono::steady_clock::now();
  MeshReport report;
  const Mesh scalp = scalp_surface(head, &report);
  const double mesh_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const MeshSummary s = summarize(scalp, &head);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN(fmt::format(
      "real scalp: {} vertices, {} triangles, Euler {}, {} self-intersections, vertex to mask boundary mean "
      "{:.3f} / p95 {:.3f} / max {:.3f} mm, {} handle voxels filled; mesh {:.2f} s, mesh + checks {:.2f} s "
      "on {} threads",
      s.vertices, s.triangles, s.euler, s.self_intersections, s.boundary.mean_mm, s.boundary.p95_mm, s.boundary.max_mm,
      report.filled_handle_voxels, mesh_s, total_s, threads()));
  CHECK(s.euler == 2);
  CHECK(s.closed_manifold);
  CHECK(s.components == 1);
  CHECK(s.self_intersections == 0);
  CHECK(s.boundary.max_mm < 1.0);
  CHECK(s.volume_ml > 1000.0);

  const std::string ref = data + "/philips-mprage/reference/";
  const Mask gm = threshold(read_image(ref + "pve_gm_fast.nii.gz"), 0.5f);
  const Mask wm = threshold(read_image(ref + "pve_wm_fast.nii.gz"), 0.5f);
  for (const bool pial : {true, false}) {
    const auto t0 = std::chrono::steady_clock::now();
    const Mesh surf = pial ? pial_surface(gm, wm) : white_surface(wm);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const MeshSummary ss = summarize(surf, nullptr);
    WARN(fmt::format("{} surface (FAST pve > 0.5): {} triangles, Euler {}, {} self-intersections, {:.2f} s",
                     pial ? "pial" : "white", ss.triangles, ss.euler, ss.self_intersections, secs));
    CHECK(ss.closed_manifold);
    CHECK(ss.components == 1);
  }
}
