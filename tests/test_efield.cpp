// The induced electric field: physics checks that need no other software (DESIGN.md 10), coil
// files, the parametric coil against a validated model, BEM against the sphere. The two mesh
// convergence tests are tagged [numeric], not [unit]: they factorise 5,120 x 5,120 matrices, too
// slow under the sanitizers for what they would check there (pure arithmetic); the main suite
// runs them.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "../lib/efield/internal.hpp"
#include "support.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/parallel.hpp"

using namespace tmsplan;
using namespace tmsplan::efield;

namespace {

// A coil pose looking at `centre` from `dir` (unit, outward) at distance `dist` from the centre,
// handle turned by `angle` about the coil's z axis.
Eigen::Matrix4d pose_over(const Eigen::Vector3d& centre, Eigen::Vector3d dir, double dist, double angle_deg) {
  dir.normalize();
  const Eigen::Vector3d z = -dir;
  Eigen::Vector3d y0 = Eigen::Vector3d::UnitY() - Eigen::Vector3d::UnitY().dot(z) * z;
  if (y0.norm() < 1e-3) y0 = Eigen::Vector3d::UnitX() - Eigen::Vector3d::UnitX().dot(z) * z;
  y0.normalize();
  const double a = angle_deg * M_PI / 180;
  const Eigen::Vector3d y = std::cos(a) * y0 + std::sin(a) * z.cross(y0);
  Eigen::Matrix4d p = Eigen::Matrix4d::Identity();
  p.block<3, 1>(0, 0) = y.cross(z);
  p.block<3, 1>(0, 1) = y;
  p.block<3, 1>(0, 2) = z;
  p.block<3, 1>(0, 3) = centre + dist * dir;
  return p;
}

// Random points inside a ball (deterministic).
Eigen::Matrix3Xd ball_points(const Eigen::Vector3d& c, double r, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Eigen::Matrix3Xd p(3, n);
  for (int i = 0; i < n;) {
    const Eigen::Vector3d q(u(rng), u(rng), u(rng));
    if (q.norm() <= 1) p.col(i++) = c + r * q;
  }
  return p;
}

double rel_l2(const Eigen::Matrix3Xd& a, const Eigen::Matrix3Xd& ref) { return (a - ref).norm() / ref.norm(); }

Coil test_coil() {
  Figure8Geometry g;
  g.inner_radius_mm = 10;
  g.outer_radius_mm = 40;
  g.turns = 9;
  g.wing_centre_mm = 42;
  g.height_mm = 8;
  g.element_mm = 3;
  return figure8(g, "test");
}

}  // namespace

TEST_CASE("efield: sphere field has no radial component and matches the primary field's curl", "[unit][efield]") {
  const Coil coil = test_coil();
  const Eigen::Vector3d c(3, -4, 10);
  const SphereModel sphere(c);
  for (double angle : {0.0, 37.0, 90.0}) {
    const Dipoles d = place(coil, pose_over(c, Eigen::Vector3d(0.3, -0.2, 1), 90, angle));
    const Eigen::Matrix3Xd pts = ball_points(c, 75, 200, 7);
    const Eigen::Matrix3Xd e = sphere.field(d, pts);
    for (Eigen::Index i = 0; i < pts.cols(); ++i) {
      const Eigen::Vector3d rhat = (pts.col(i) - c).normalized();
      CHECK(std::abs(e.col(i).dot(rhat)) <= 1e-9 * e.col(i).norm());
    }
    // E - E_primary is a gradient (curl-free) and divergence-free: check by central differences.
    const double h = 0.05;
    auto es = [&](const Eigen::Vector3d& p) -> Eigen::Vector3d {
      Eigen::Matrix3Xd q(3, 1);
      q.col(0) = p;
      return sphere.field(d, q).col(0) - primary_field(d, q).col(0);
    };
    for (int i = 0; i < 10; ++i) {
      const Eigen::Vector3d p = pts.col(i);
      Eigen::Matrix3d jac;
      for (int a = 0; a < 3; ++a) {
        Eigen::Vector3d dp = Eigen::Vector3d::Zero();
        dp[a] = h;
        jac.col(a) = (es(p + dp) - es(p - dp)) / (2 * h);
      }
      const double scale = jac.norm();
      CHECK((jac - jac.transpose()).norm() <= 1e-5 * scale);  // curl 0
      CHECK(std::abs(jac.trace()) <= 1e-5 * scale);           // div 0
    }
  }
}

TEST_CASE("efield: BEM on sphere meshes converges to the closed form, for any radius", "[efield][numeric]") {
  const Coil coil = test_coil();
  const Eigen::Vector3d c(0, 0, 0);
  const SphereModel sphere(c);
  std::vector<double> errors;
  for (int f : {9, 12, 16}) {
    const BemModel bem(geodesic_sphere(f, c, Eigen::Vector3d(85, 85, 85)));
    double worst = 0;
    for (double angle : {0.0, 45.0, 120.0}) {
      const Dipoles d = place(coil, pose_over(c, Eigen::Vector3d(0.2, 0.5, 1), 85 + 4, angle));
      const Eigen::Matrix3Xd pts = ball_points(c, 80, 300, 11);
      worst = std::max(worst, rel_l2(bem.field(d, pts), sphere.field(d, pts)));
    }
    errors.push_back(worst);
  }
  INFO("relative L2 error for 1620, 2880, 5120 triangles: " << errors[0] << " " << errors[1] << " " << errors[2]);
  CHECK(errors[2] < errors[1]);
  CHECK(errors[1] < errors[0]);
  CHECK(errors[2] <= 0.02);
  // Another radius, same centre: the same field (it does not depend on the radius).
  const BemModel bem95(geodesic_sphere(16, c, Eigen::Vector3d(95, 95, 95)));
  const Dipoles d = place(coil, pose_over(c, Eigen::Vector3d(0.2, 0.5, 1), 95 + 4, 30));
  const Eigen::Matrix3Xd pts = ball_points(c, 80, 300, 12);
  CHECK(rel_l2(bem95.field(d, pts), sphere.field(d, pts)) <= 0.02);
}

namespace {

std::string coil_file(const std::string& name) {
  const std::string data = testing::shared_data();
  if (data.empty() || !std::filesystem::exists(data + "/coils/" + name))
    testing::skip("shared data not found (../shared/data/coils/" + name + ")");
  return data + "/coils/" + name;
}

// Peak |E| and the area where |E| >= peak/2 on the cap `depth` mm below the surface of an 85 mm
// sphere, coil 4 mm above it (1 mm grid on the tangent plane, projected onto the cap).
std::pair<double, double> peak_and_half_area(const Coil& coil, double depth) {
  const Eigen::Vector3d c(0, 0, 0);
  const SphereModel sphere(c);
  Eigen::Matrix4d pose = Eigen::Matrix4d::Identity();
  pose.block<3, 1>(0, 0) = Eigen::Vector3d(-1, 0, 0);
  pose.block<3, 1>(0, 2) = Eigen::Vector3d(0, 0, -1);
  pose.block<3, 1>(0, 3) = Eigen::Vector3d(0, 0, 89);
  const int n = 101;
  Eigen::Matrix3Xd pts(3, n * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      pts.col(i * n + j) = Eigen::Vector3d(i - 50.0, j - 50.0, 85.0).normalized() * (85.0 - depth);
  const Eigen::Matrix3Xd e = sphere.field(place(coil, pose), pts);
  double peak = 0;
  for (int i = 0; i < e.cols(); ++i) peak = std::max(peak, e.col(i).norm());
  double area = 0;
  for (int i = 0; i < e.cols(); ++i)
    if (e.col(i).norm() >= peak / 2) area += 1.0;
  return {peak, area};
}

}  // namespace

TEST_CASE("efield: .ccd reader keeps the header's count, dI/dt and total moment", "[unit][efield][data]") {
  const std::string path = coil_file("MagStim_D70.ccd");
  const Coil coil = read_ccd(path);
  // Independent parse: skip '#' lines, the first number is the count, then 6 numbers a line.
  std::ifstream in(path);
  std::string line;
  long count = -1, rows = 0;
  Eigen::Vector3d total(0, 0, 0);
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    if (count < 0) {
      s >> count;
      continue;
    }
    double v[6];
    for (double& x : v) s >> x;
    total += Eigen::Vector3d(v[3], v[4], v[5]);
    ++rows;
  }
  CHECK(static_cast<long>(coil.size()) == count);
  CHECK(rows == count);
  CHECK((coil.moment.rowwise().sum() - total).norm() <= 1e-12 * std::max(1e-9, total.norm()) + 1e-18);
  REQUIRE(coil.didt_max_a_per_us);
  CHECK(*coil.didt_max_a_per_us == Approx(114.73));
  CHECK(coil.stimulator == "Magstim Rapid");
}

TEST_CASE("efield: coil files point their field the way DESIGN.md says (D70 +y, MC-B70 -y)", "[unit][efield][data]") {
  for (const auto& [file, sign] :
       {std::pair<std::string, double>{"MagStim_D70.ccd", 1.0}, {"MagVenture_MC-B70.ccd", -1.0}}) {
    const Coil coil = read_ccd(coil_file(file));
    Eigen::Matrix3Xd p(3, 1);
    p.col(0) = Eigen::Vector3d(0, 0, 20);  // 20 mm below the casing, coil frame = world
    const Eigen::Matrix3Xd e = primary_field(place(coil, Eigen::Matrix4d::Identity()), p);
    INFO(file << " E under the centre " << e.col(0).transpose());
    CHECK(sign * e(1, 0) > 0);
    CHECK(std::abs(e(1, 0)) > 3 * std::abs(e(0, 0)));
  }
  // The built-in preset follows D70's convention.
  Eigen::Matrix3Xd p(3, 1);
  p.col(0) = Eigen::Vector3d(0, 0, 20);
  CHECK(primary_field(place(load_coil("fig8-70"), Eigen::Matrix4d::Identity()), p)(1, 0) > 0);
}

TEST_CASE("efield: built-in 70 mm figure-8 against the validated D70 model", "[unit][efield][data]") {
  const Coil ref = read_ccd(coil_file("MagStim_D70.ccd"));
  const Coil ours = load_coil("fig8-70");
  for (double depth : {15.0, 20.0, 25.0}) {
    const auto [pr, ar] = peak_and_half_area(ref, depth);
    const auto [po, ao] = peak_and_half_area(ours, depth);
    INFO("depth " << depth << " mm: peak ours " << po << " ref " << pr << " V/m per A/us; half-value area ours " << ao
                  << " ref " << ar << " mm2");
    CHECK(std::abs(po / pr - 1) <= 0.10);
    CHECK(std::abs(ao / ar - 1) <= 0.15);
  }
}

TEST_CASE("efield: the built-in coil's discretisation has converged at 10 mm", "[unit][efield]") {
  const nlohmann::json presets =
      nlohmann::json::parse(std::ifstream(std::string(TMSPLAN_SOURCE_DIR) + "/data/coils/presets.json"));
  const auto& g = presets["presets"][0]["geometry"];
  Figure8Geometry geo;
  geo.inner_radius_mm = g["inner_radius_mm"];
  geo.outer_radius_mm = g["outer_radius_mm"];
  geo.turns = g["turns"];
  geo.wing_centre_mm = g["wing_centre_mm"];
  geo.height_mm = g["height_mm"];
  geo.element_mm = g["element_mm"];
  const Coil coarse = figure8(geo);
  geo.element_mm /= 4;
  const Coil fine = figure8(geo);
  // Points on a plane 10 mm below the casing, under the windings.
  Eigen::Matrix3Xd p(3, 121);
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j) p.col(i * 11 + j) = Eigen::Vector3d(-50 + 10.0 * i, -50 + 10.0 * j, 10);
  const Eigen::Matrix3Xd ec = primary_field(place(coarse, Eigen::Matrix4d::Identity()), p);
  const Eigen::Matrix3Xd ef = primary_field(place(fine, Eigen::Matrix4d::Identity()), p);
  INFO("dipoles " << coarse.size() << " vs " << fine.size() << ", relative L2 " << rel_l2(ec, ef));
  CHECK(rel_l2(ec, ef) <= 0.005);
  CHECK(coarse.size() >= 200);
}

TEST_CASE("efield: bad coil files and poses give one clear error", "[unit][efield]") {
  const std::string dir = testing::temp_dir("efield_bad");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string head = "# x.ccd version 1.0; dIdtmax=100;stimulator=S;\n";
  CHECK_THROWS_WITH(read_ccd(write("empty.ccd", "")), Catch::Contains("empty file"));
  CHECK_THROWS_WITH(read_ccd(write("nohead.ccd", "2\n0 0 0 0 0 1\n")), Catch::Contains("header"));
  CHECK_THROWS_WITH(read_ccd(write("trunc.ccd", head + "3\n0 0 0 0 0 1e-6\n0.01 0 0 0 0 1e-6\n")),
                    Catch::Contains("truncated"));
  CHECK_THROWS_WITH(read_ccd(write("short.ccd", head + "1\n0 0 0 0 0\n")), Catch::Contains("6 numbers"));
  CHECK_THROWS_WITH(read_ccd(write("text.ccd", head + "1\n0 0 zero 0 0 1\n")), Catch::Contains("6 numbers"));
  CHECK_THROWS_WITH(read_ccd(write("nan.ccd", head + "1\n0 0 nan 0 0 1\n")), Catch::Contains("not finite"));
  CHECK_THROWS_WITH(read_ccd(write("mm.ccd", head + "1\n0 0 20 0 0 1\n")), Catch::Contains("metres"));
  CHECK_THROWS_WITH(read_ccd(write("count.ccd", head + "x\n")), Catch::Contains("number of dipoles"));
  CHECK_NOTHROW(read_ccd(write("ok.ccd", head + "1\n0 0 0.01 0 0 1e-6\n")));
  Eigen::Matrix4d bad = Eigen::Matrix4d::Identity();
  bad(0, 0) = 2;
  CHECK_THROWS_WITH(check_pose(bad, "pose"), Catch::Contains("not a rotation"));
  bad = Eigen::Matrix4d::Identity();
  bad(0, 0) = -1;
  CHECK_THROWS_WITH(check_pose(bad, "pose"), Catch::Contains("left-handed"));
  // Points outside the sphere's conductor, a coil inside it.
  const Coil coil = test_coil();
  const SphereModel sphere(Eigen::Vector3d::Zero(), 85);
  Eigen::Matrix3Xd far(3, 1);
  far.col(0) = Eigen::Vector3d(0, 0, 86);
  CHECK_THROWS_WITH(
      sphere.check_geometry(place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ(), 95, 0)), far),
      Catch::Contains("outside the conductor"));
  Eigen::Matrix3Xd in(3, 1);
  in.col(0) = Eigen::Vector3d(0, 0, 40);
  CHECK_THROWS_WITH(
      sphere.check_geometry(place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ(), 60, 0)), in),
      Catch::Contains("reaches into the conductor"));
}

TEST_CASE("efield: on a sulcus phantom the normal objective turns the field across the sulcal wall", "[unit][efield]") {
  // A sulcus running along world y under a coil at the top of an 85 mm head-sphere: its two walls
  // are the planes x = -1.5 and x = +1.5 mm, 15 to 25 mm below the surface, normals along -+x.
  const Coil coil = load_coil("fig8-70");
  const SphereModel sphere(Eigen::Vector3d::Zero());
  std::vector<Eigen::Vector3d> p, n;
  for (double side : {-1.0, 1.0})
    for (double y = -6; y <= 6; y += 2)
      for (double z = 60; z <= 70; z += 2) {
        p.emplace_back(side * 1.5, y, z);
        n.emplace_back(-side, 0, 0);  // into each wall's grey matter
      }
  Eigen::Matrix3Xd pts(3, p.size()), nrm(3, n.size());
  for (std::size_t i = 0; i < p.size(); ++i) pts.col(i) = p[i], nrm.col(i) = n[i];
  for (double start : {0.0, 30.0, 75.0}) {  // the sweep's starting handle direction must not matter
    const Eigen::Matrix4d pose0 = pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ(), 89, start);
    const AngleSweep s = sweep_angles(coil, sphere, pts, nrm, pose0, "normal", 5.0);
    // The field under the centre runs along the handle axis y: across the wall means y along x.
    const double r = (s.best_deg + start) * M_PI / 180;
    const Eigen::Vector3d y = std::cos(r) * Eigen::Vector3d::UnitY() +
                              std::sin(r) * Eigen::Vector3d(0, 0, -1).cross(Eigen::Vector3d::UnitY());
    const double off_perpendicular = std::acos(std::min(1.0, std::abs(y.x()))) * 180 / M_PI;
    INFO("start " << start << ": best " << s.best_deg << " deg, handle " << y.transpose() << ", " << off_perpendicular
                  << " deg from across the wall");
    CHECK(off_perpendicular <= 10.0);
    CHECK_FALSE(s.flat);
    // |E| barely depends on the angle under a sphere (DESIGN.md 10).
    CHECK(sweep_angles(coil, sphere, pts, nrm, pose0, "magnitude", 15.0).flat);
  }
}

TEST_CASE("efield: BEM on an ellipsoid: no current leaves, and the mesh has converged", "[efield][numeric]") {
  const Coil coil = load_coil("fig8-70");
  const Eigen::Vector3d c(0, 0, 0), axes(75, 95, 85);
  // The coil over a point of the upper-front surface, 4 mm off it, along the surface normal.
  const Eigen::Vector3d dir(0.3, 0.4, 0.866);
  const double t = 1.0 / std::sqrt(std::pow(dir.x() / axes.x(), 2) + std::pow(dir.y() / axes.y(), 2) +
                                   std::pow(dir.z() / axes.z(), 2));
  const Eigen::Vector3d surf = t * dir;
  const Eigen::Vector3d normal = Eigen::Vector3d(surf.x() / (axes.x() * axes.x()), surf.y() / (axes.y() * axes.y()),
                                                 surf.z() / (axes.z() * axes.z()))
                                     .normalized();
  Eigen::Matrix4d pose = pose_over(Eigen::Vector3d::Zero(), normal, 0, 20);
  pose.block<3, 1>(0, 3) = surf + 4 * normal;
  const Dipoles d = place(coil, pose);
  // Target points 10-25 mm below the coil.
  Eigen::Matrix3Xd targets(3, 16);
  for (int i = 0; i < 16; ++i)
    targets.col(i) = surf - (10 + i) * normal + Eigen::Vector3d(i % 3 - 1.0, (i % 5) - 2.0, 0) * 2.0;
  std::vector<Eigen::Matrix3Xd> fields;
  for (int f : {9, 12, 16}) {
    const BemModel bem(geodesic_sphere(f, c, axes));
    fields.push_back(bem.field(d, targets));
    if (f != 16) continue;
    // 1 mm inside the boundary under the coil: the normal component against |E|.
    const Mesh& m = bem.surface();
    std::vector<Eigen::Vector3d> pts, nn;
    for (const auto& tri : m.triangles) {
      const Eigen::Vector3d a = m.vertices[tri[0]], b = m.vertices[tri[1]], cc = m.vertices[tri[2]];
      const Eigen::Vector3d cen = (a + b + cc) / 3.0, nrm = (b - a).cross(cc - a).normalized();
      if ((cen - surf).norm() > 30) continue;
      pts.push_back(cen - nrm), nn.push_back(nrm);
    }
    Eigen::Matrix3Xd p(3, pts.size());
    for (std::size_t i = 0; i < pts.size(); ++i) p.col(i) = pts[i];
    const Eigen::Matrix3Xd e = bem.field(d, p);
    double worst = 0, sum_n = 0, sum_e = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const double en = std::abs(e.col(i).dot(nn[i])), em = e.col(i).norm();
      worst = std::max(worst, en / em);
      sum_n += en, sum_e += em;
    }
    INFO(pts.size() << " points 1 mm inside: mean |E.n|/|E| " << sum_n / sum_e << ", worst " << worst);
    CHECK(sum_n / sum_e <= 0.02);
    // Without the boundary's charges the normal component would be large: the test can fail.
    const Eigen::Matrix3Xd ep = primary_field(d, p);
    double prim_n = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) prim_n += std::abs(ep.col(i).dot(nn[i]));
    CHECK(prim_n / sum_e > 0.05);
  }
  const double change = rel_l2(fields[2], fields[1]);
  INFO("target field change 1620 -> 2880: " << rel_l2(fields[1], fields[0]) << ", 2880 -> 5120: " << change);
  CHECK(change < 0.01);
}

TEST_CASE("efield: BEM refuses open and inward surfaces and a coil inside the conductor", "[unit][efield]") {
  Mesh m = geodesic_sphere(4, Eigen::Vector3d::Zero(), Eigen::Vector3d(85, 85, 85));
  Mesh open = m;
  open.triangles.pop_back();
  CHECK_THROWS_WITH(BemModel(open), Catch::Contains("not a closed"));
  Mesh inward = m;
  for (auto& t : inward.triangles) std::swap(t[1], t[2]);
  CHECK_THROWS_WITH(BemModel(inward), Catch::Contains("oriented inwards"));
  const BemModel bem(m);
  const Coil coil = test_coil();
  Eigen::Matrix3Xd in(3, 1), out(3, 1);
  in.col(0) = Eigen::Vector3d(0, 0, 50);
  out.col(0) = Eigen::Vector3d(0, 0, 90);
  CHECK_NOTHROW(
      bem.check_geometry(place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ(), 89, 0)), in));
  CHECK_THROWS_WITH(
      bem.check_geometry(place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ(), 89, 0)), out),
      Catch::Contains("outside the conductor"));
  CHECK_THROWS_WITH(
      bem.check_geometry(place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ(), 70, 0)), in),
      Catch::Contains("intersects the conductor"));
}

TEST_CASE("efield tool: bad input gives one error line, exit 1, and no output", "[cli][efield]") {
  const std::string dir = testing::temp_dir("efield_cli");
  std::ofstream(dir + "/pose_shear.txt") << "1 0.5 0 0\n0 1 0 0\n0 0 1 90\n0 0 0 1\n";
  std::ofstream(dir + "/pose_ok.txt") << "-1 0 0 0\n0 1 0 0\n0 0 -1 89\n0 0 0 1\n";
  std::ofstream(dir + "/points.txt") << "x,y,z\n0,0,50\n1,2,60\n";
  std::ofstream(dir + "/points_out.txt") << "0,0,50\n0,0,120\n";
  std::ofstream(dir + "/bad.ccd") << "# bad.ccd; dIdtmax=100;\n5\n0 0 0 0 0 1e-6\n";
  const std::string probe =
      testing::bin("efield") + " probe --points " + dir + "/points.txt --model sphere --sphere-centre 0,0,0 ";
  auto one_error = [](const testing::RunResult& r, const std::string& what) {
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("efield: error:") == 0);
    CHECK(r.err.find(what) != std::string::npos);
  };
  one_error(testing::run(probe + "--pose " + dir + "/pose_shear.txt"), "not a rotation");
  one_error(testing::run(probe + "--pose " + dir + "/pose_ok.txt --coil " + dir + "/bad.ccd"), "truncated");
  one_error(testing::run(testing::bin("efield") + " probe --points " + dir +
                         "/points_out.txt --model sphere --sphere-centre 0,0,0 --pose " + dir + "/pose_ok.txt"),
            "outside the conductor");
  // A good probe: 2 lines of 6 numbers, and the field has no radial part.
  const auto ok = testing::run(probe + "--pose " + dir + "/pose_ok.txt");
  REQUIRE(ok.exit_code == 0);
  CHECK(std::count(ok.out.begin(), ok.out.end(), '\n') == 2);
  // The step on a folder without a targets.json: nothing written.
  const std::string subj = testing::temp_dir("efield_cli_subject");
  one_error(testing::run(testing::bin("efield") + " -s " + subj), "targets.json");
  CHECK(testing::list_files(subj).empty());
  // Usage errors exit 2.
  CHECK(testing::run(testing::bin("efield") + " -s " + subj + " --objective nonsense").exit_code == 2);
  CHECK(testing::run(testing::bin("efield") + " -s " + subj + " --dose-objective nonsense").exit_code == 2);
  CHECK(testing::run(testing::bin("efield") + " -s " + subj + " --normal-smoothing 9").exit_code == 2);
}

TEST_CASE("efield: fields are bit-identical whatever the thread count", "[unit][efield]") {
  const Coil coil = load_coil("fig8-70");
  const Eigen::Matrix4d pose = pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d(0.1, 0.2, 1), 89, 33);
  const Dipoles d = place(coil, pose);
  const Eigen::Matrix3Xd pts = ball_points(Eigen::Vector3d::Zero(), 70, 257, 5);
  const Mesh mesh = geodesic_sphere(8, Eigen::Vector3d::Zero(), Eigen::Vector3d(80, 90, 85));
  std::vector<Eigen::Matrix3Xd> out[2];
  for (int k = 0; k < 2; ++k) {
    tmsplan::set_threads(k + 1);
    const BemModel bem(mesh);
    out[k] = {primary_field(d, pts), SphereModel(Eigen::Vector3d(1, 2, 3)).field(d, pts), bem.field(d, pts),
              bem.probe(pts).field(d)};
  }
  tmsplan::set_threads(0);
  for (std::size_t i = 0; i < out[0].size(); ++i) CHECK((out[0][i].array() == out[1][i].array()).all());
  // The probe path (the placement search: every triangle) and the direct path (the field maps:
  // far patches of triangles as one charge and dipole) agree to the patches' error.
  const double gap = rel_l2(out[0][3], out[0][2]);
  CHECK(gap < 1e-3);
  CHECK(gap > 0);
}

TEST_CASE("efield: the right-hand side's clustered coil is close to every dipole, closer when stricter",
          "[unit][efield]") {
  // primary_field_clustered serves the boundary-element right-hand side: a cluster of coil
  // dipoles seen from farther than `far` times its radius is one dipole. The error must fall as
  // the criterion tightens and vanish when no cluster is far enough.
  const Coil coil = load_coil("fig8-70");
  const Dipoles d = place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d(0.2, -0.1, 1), 95, 20));
  REQUIRE(d.cluster_first.size() > 10);
  REQUIRE(d.cluster_first.size() < d.cluster_order.size() / 4);  // clusters hold several dipoles
  REQUIRE(d.cluster_order.size() == static_cast<std::size_t>(d.position_mm.cols()));
  // Points of a head-sized ball under the coil: 5 to 170 mm from its dipoles.
  const Eigen::Matrix3Xd pts = ball_points(Eigen::Vector3d::Zero(), 80, 2000, 11);
  const Eigen::Matrix3Xd exact = primary_field(d, pts);
  // 8 radii is what the boundary-element right-hand side uses (lib/efield/bem.cpp).
  const double e8 = rel_l2(primary_field_clustered(d, pts, 8.0), exact);
  const double e12 = rel_l2(primary_field_clustered(d, pts, 12.0), exact);
  const double all = rel_l2(primary_field_clustered(d, pts, 1e9), exact);
  INFO("relative L2 error: far 8 " << e8 << ", far 12 " << e12 << ", no cluster far " << all);
  CHECK(e8 < 1e-3);
  CHECK(e8 > 0);  // the approximation is in use
  CHECK(e12 < 0.5 * e8);
  CHECK(all < 1e-12);  // every dipole, in another order
  // The right-hand side is summed in single precision (it feeds a single-precision solve): its
  // rounding must stay far below the clustering's error and the solve's.
  const double single = rel_l2(detail::primary_field_single(d, pts, 8.0), primary_field_clustered(d, pts, 8.0));
  const double single_all = rel_l2(detail::primary_field_single(d, pts, 1e9), exact);
  INFO("single precision: " << single << " (clustered), " << single_all << " (every dipole)");
  CHECK(single < 1e-5);
  CHECK(single > 0);  // it is single precision
  CHECK(single_all < 1e-5);
}

TEST_CASE("efield: one solve for many poses gives each pose's own charges and fields", "[unit][efield]") {
  const Coil coil = load_coil("fig8-70");
  const Mesh mesh = geodesic_sphere(8, Eigen::Vector3d::Zero(), Eigen::Vector3d(80, 90, 85));
  const BemModel bem(mesh);
  std::vector<Dipoles> poses;
  for (int k = 0; k < 21; ++k)
    poses.push_back(
        place(coil, pose_over(Eigen::Vector3d::Zero(), Eigen::Vector3d(0.1 * k - 1, 0.3, 1), 100, 9.0 * k)));
  const Eigen::MatrixXd q = bem.charges(poses);
  REQUIRE(q.cols() == 21);
  const Eigen::Matrix3Xd pts = ball_points(Eigen::Vector3d::Zero(), 60, 50, 3);
  const BemModel::Probe probe = bem.probe(pts);
  const std::vector<Eigen::Matrix3Xd> fields = probe.fields(poses);
  for (int k = 0; k < 21; ++k) {
    const Eigen::VectorXd one = bem.charges(poses[static_cast<std::size_t>(k)]);
    CHECK((q.col(k) - one).norm() <= 1e-5 * one.norm());
    CHECK(rel_l2(fields[static_cast<std::size_t>(k)], bem.field(poses[static_cast<std::size_t>(k)], pts)) < 1e-5);
  }
  // Different poses give different charges (the batch is not one column repeated).
  CHECK((q.col(0) - q.col(20)).norm() > 0.1 * q.col(0).norm());
}

namespace {
// int_T (r - r')/|r - r'|^3 dS' by brute force: the triangle cut into 4^depth pieces, each one
// point at its centroid (independent of the closed form it checks).
Eigen::Vector3d brute_triangle_field(const Eigen::Vector3d& r, const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                                     const Eigen::Vector3d& c, int depth) {
  if (depth == 0) {
    const Eigen::Vector3d d = r - (a + b + c) / 3.0;
    return d * (0.5 * (b - a).cross(c - a).norm() / std::pow(d.norm(), 3));
  }
  const Eigen::Vector3d ab = 0.5 * (a + b), bc = 0.5 * (b + c), ca = 0.5 * (c + a);
  return brute_triangle_field(r, a, ab, ca, depth - 1) + brute_triangle_field(r, ab, b, bc, depth - 1) +
         brute_triangle_field(r, ca, bc, c, depth - 1) + brute_triangle_field(r, ab, bc, ca, depth - 1);
}
}  // namespace

TEST_CASE("efield: a triangle's field in closed form matches fine quadrature, on both sides and in its plane",
          "[unit][efield]") {
  const Eigen::Vector3d a(0, 0, 0), b(6, 0.5, 0.3), c(1.5, 5, -0.4);
  const Eigen::Vector3d n = (b - a).cross(c - a).normalized(), cen = (a + b + c) / 3.0;
  // Points above and below the centroid, over an edge's midpoint, beyond a corner, in the plane
  // outside the triangle, and far away (where the centroid rule is already good).
  const std::vector<Eigen::Vector3d> pts = {cen + 2.0 * n,
                                            cen - 0.7 * n,
                                            0.5 * (a + b) + 1.0 * n,
                                            b + Eigen::Vector3d(1, 1, 1.5),
                                            cen + 2.0 * (c - cen) + 1e-9 * n,
                                            cen + 30.0 * n + Eigen::Vector3d(5, -3, 0)};
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const Eigen::Vector3d exact = detail::triangle_field(pts[i], a, b, c);
    const Eigen::Vector3d brute = brute_triangle_field(pts[i], a, b, c, 8);
    INFO("point " << i << ": closed form " << exact.transpose() << ", quadrature " << brute.transpose());
    CHECK((exact - brute).norm() <= 2e-3 * brute.norm());
  }
  // The normal part is the solid angle: 2 pi just above the middle of the triangle, -2 pi below.
  CHECK(detail::triangle_field(cen + 1e-6 * n, a, b, c).dot(n) == Approx(2 * M_PI).epsilon(1e-4));
  CHECK(detail::triangle_field(cen - 1e-6 * n, a, b, c).dot(n) == Approx(-2 * M_PI).epsilon(1e-4));
}

TEST_CASE("efield: inside() agrees with the ellipsoid's own equation, near and far from the surface",
          "[unit][efield]") {
  // Far patches count by their vector area (an approximation of their solid angle); the decision
  // must still be exact for points 0.5 mm from the surface and for points far outside.
  const Eigen::Vector3d axes(75, 95, 85);
  const BemModel bem(geodesic_sphere(16, Eigen::Vector3d::Zero(), axes));
  std::mt19937 rng(7);
  std::normal_distribution<double> g(0, 1);
  int checked = 0, inside = 0;
  for (int i = 0; i < 400; ++i) {
    const Eigen::Vector3d dir = Eigen::Vector3d(g(rng), g(rng), g(rng)).normalized();
    const double t = 1.0 / std::sqrt(std::pow(dir.x() / axes.x(), 2) + std::pow(dir.y() / axes.y(), 2) +
                                     std::pow(dir.z() / axes.z(), 2));
    // The mesh's vertices lie on the ellipsoid and its flat triangles inside it: radial offsets of
    // -4..-1.5 mm are inside the mesh, +0.5..+60 mm outside.
    const double offsets[] = {-40.0, -4.0, -1.5, 0.5, 5.0, 60.0};
    for (double off : offsets) {
      const Eigen::Vector3d p = (t + off) * dir;
      const bool want = off < 0;
      CHECK(bem.inside(p) == want);
      ++checked, inside += want;
    }
  }
  CHECK(checked == 2400);
  CHECK(inside == 1200);
}
