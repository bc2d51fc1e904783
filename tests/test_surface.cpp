// Surfaces and cortical maps: analytic shapes with known answers (sphere, torus, oblique mirrored
// grids, nested spheres, a grooved brain), GIfTI round trips (and nibabel when present), and a
// real head from ../shared/data.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
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

TEST_CASE("GIfTI write/read round trip and refusals", "[surface][unit]") {
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
  // A small file that declares 2^28 - 1 points (as the fuzzer found) is refused before anything of
  // that size is allocated, in each encoding.
  for (const char* encoding : {"ASCII", "Base64Binary", "GZipBase64Binary"}) {
    std::ofstream(dir + "/huge.surf.gii")
        << "<GIFTI><DataArray Intent=\"NIFTI_INTENT_POINTSET\" DataType=\"NIFTI_TYPE_FLOAT32\" Dim0=\"268435455\" "
           "Dim1=\"3\" Encoding=\""
        << encoding << "\" Endian=\"LittleEndian\"><Data>0 0 0 10 0 0</Data></DataArray></GIFTI>";
    CHECK_THROWS_WITH(read_gifti(dir + "/huge.surf.gii"), Catch::Contains("too short for its dimensions"));
  }
  CHECK_THROWS_AS(write_gifti(dir + "/empty.surf.gii", Mesh{}, true), Error);
}

// An independent reader: nibabel loads both encodings (zlib base64 and plain base64) with the same
// points and triangles. Skipped (ctest: Skipped) without python3-nibabel; scripts/test.sh installs it.
TEST_CASE("GIfTI files load in nibabel", "[surface][unit]") {
  if (!have_nibabel()) testing::skip("/usr/bin/python3 with nibabel not found (apt-get install python3-nibabel)");
  const std::string dir = testing::temp_dir("surface-gifti-nibabel");
  const Grid g = cube_grid(32, centred(32));
  const Mesh mesh = mesh_from_mask(shape(g, [](const Eigen::Vector3d& p) { return p.norm() < 10; }));
  for (const bool compress : {true, false}) {
    GiftiOptions o;
    o.compress = compress;
    write_gifti(dir + (compress ? "/z.surf.gii" : "/b.surf.gii"), mesh, o);
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

TEST_CASE("smoothed normals: nearer the true normal on a digital sphere, and the walls of a slot do not mix",
          "[surface][unit]") {
  // A ball of 20 mm on a 1 mm grid: the true normal is radial; the staircase tilts the raw ones.
  const Grid g = cube_grid(64, centred(64));
  const Mesh ball = mesh_from_mask(shape(g, [](const Eigen::Vector3d& p) { return p.norm() < 20.0; }));
  auto angle_stats = [&](const std::vector<Eigen::Vector3d>& n) {
    std::vector<double> a;
    for (std::size_t v = 0; v < ball.vertices.size(); ++v)
      a.push_back(std::acos(std::clamp(n[v].dot(ball.vertices[v].normalized()), -1.0, 1.0)) * 180 / M_PI);
    std::sort(a.begin(), a.end());
    double mean = 0;
    for (double x : a) mean += x / double(a.size());
    return std::make_pair(mean, a[std::size_t(0.95 * double(a.size()))]);
  };
  const auto raw = angle_stats(vertex_normals(ball));
  const auto smooth = angle_stats(smooth_vertex_normals(ball, vertex_normals(ball), 2.0));
  INFO("raw mean " << raw.first << " p95 " << raw.second << " deg; smoothed mean " << smooth.first << " p95 "
                   << smooth.second);
  CHECK(smooth.first < 0.6 * raw.first);
  CHECK(smooth.second < 0.6 * raw.second);
  CHECK(smooth.second < 3.0);
  CHECK(smooth_vertex_normals(ball, vertex_normals(ball), 0.0) == vertex_normals(ball));
  // A block with a slot two voxels wide (walls at x = -1 and +1 mm, 2 mm apart, as in a tight
  // sulcus): smoothing along the surface over 2 mm keeps each wall's own normal (a smoothing over
  // space would average the two walls' opposite normals to nothing).
  const Mask block = shape(g, [](const Eigen::Vector3d& p) {
    return p.cwiseAbs().maxCoeff() < 20.0 && !(std::abs(p.x()) < 1.0 && p.z() > 5.0);
  });
  const Mesh slot = mesh_from_mask(block);
  const auto n = smooth_vertex_normals(slot, vertex_normals(slot), 2.0);
  int walls = 0, kept = 0;
  for (std::size_t v = 0; v < slot.vertices.size(); ++v) {
    const Eigen::Vector3d& p = slot.vertices[v];
    if (std::abs(std::abs(p.x()) - 1.0) > 0.3 || p.z() < 9 || p.z() > 16 || std::abs(p.y()) > 14) continue;
    ++walls;
    if (-n[v].x() * (p.x() > 0 ? 1 : -1) > 0.95) ++kept;  // outward from the tissue: into the slot
  }
  INFO(kept << " of " << walls << " wall vertices keep their wall's normal");
  REQUIRE(walls > 200);
  CHECK(kept == walls);
}
