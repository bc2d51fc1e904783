// Fitting the parametric figure-8 to a validated coil model (docs/efield.md, "Coil models").
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>

#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"

namespace tmsplan::efield {

namespace {

// Points on caps of an 85 mm sphere 15, 20 and 25 mm below its surface, under a coil 4 mm above it.
struct Bench {
  SphereModel sphere{Eigen::Vector3d::Zero()};
  Eigen::Matrix4d pose = Eigen::Matrix4d::Identity();
  Eigen::Matrix3Xd points;
};

Bench bench() {
  Bench b;
  // Coil above the north pole looking down: z = -Z, y = +Y, x = y x z = -X.
  b.pose.block<3, 1>(0, 0) = Eigen::Vector3d(-1, 0, 0);
  b.pose.block<3, 1>(0, 1) = Eigen::Vector3d(0, 1, 0);
  b.pose.block<3, 1>(0, 2) = Eigen::Vector3d(0, 0, -1);
  b.pose.block<3, 1>(0, 3) = Eigen::Vector3d(0, 0, 89);
  std::vector<Eigen::Vector3d> pts;
  for (double depth : {15.0, 20.0, 25.0})
    for (int i = -8; i <= 8; ++i)
      for (int j = -8; j <= 8; ++j) {
        const Eigen::Vector3d dir = Eigen::Vector3d(i * 5.0, j * 5.0, 85.0).normalized();
        pts.push_back(dir * (85.0 - depth));
      }
  b.points.resize(3, static_cast<Eigen::Index>(pts.size()));
  for (std::size_t i = 0; i < pts.size(); ++i) b.points.col(static_cast<Eigen::Index>(i)) = pts[i];
  return b;
}

}  // namespace

Figure8Fit fit_figure8(const Coil& reference) {
  const Bench b = bench();
  const Eigen::Matrix3Xd ref = b.sphere.field(place(reference, b.pose), b.points);
  const Eigen::VectorXd rv = Eigen::Map<const Eigen::VectorXd>(ref.data(), ref.size());
  // Direction: the reference's field under the centre along +y or -y of the coil frame.
  const int direction = ref.col(static_cast<Eigen::Index>(8 * 17 + 8))(1) >= 0 ? 1 : -1;
  auto make = [&](const std::array<double, 4>& x) {
    Figure8Geometry g;
    g.inner_radius_mm = x[0];
    g.outer_radius_mm = x[1];
    g.wing_centre_mm = x[2];
    g.height_mm = x[3];
    g.turns = 1;
    g.element_mm = 2.5;
    g.direction = direction;
    return g;
  };
  auto valid = [](const std::array<double, 4>& x) {
    return x[0] >= 1 && x[1] > x[0] + 5 && x[1] < 80 && x[2] >= 0.5 * x[1] && x[2] < 80 && x[3] >= 0 && x[3] < 30;
  };
  // Residual with the best scale (turns) for given radii, wings and height.
  auto cost = [&](const std::array<double, 4>& x, double* turns) {
    if (!valid(x)) return 1e9;
    const Eigen::Matrix3Xd e = b.sphere.field(place(figure8(make(x)), b.pose), b.points);
    const Eigen::VectorXd ev = Eigen::Map<const Eigen::VectorXd>(e.data(), e.size());
    const double s = ev.dot(rv) / ev.dot(ev);
    if (turns) *turns = s;
    return (s * ev - rv).norm() / rv.norm();
  };
  // Nelder-Mead over the four lengths from a generic start (deterministic).
  std::vector<std::array<double, 4>> simplex = {{10, 40, 42, 6}};
  const std::array<double, 4> steps = {6, 8, 8, 4};
  for (int k = 0; k < 4; ++k) {
    auto x = simplex[0];
    x[static_cast<std::size_t>(k)] += steps[static_cast<std::size_t>(k)];
    simplex.push_back(x);
  }
  std::vector<double> f;
  for (const auto& x : simplex) f.push_back(cost(x, nullptr));
  for (int it = 0; it < 400; ++it) {
    std::vector<int> order = {0, 1, 2, 3, 4};
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int c) { return f[static_cast<std::size_t>(a)] < f[static_cast<std::size_t>(c)]; });
    std::vector<std::array<double, 4>> s2;
    std::vector<double> f2;
    for (int o : order)
      s2.push_back(simplex[static_cast<std::size_t>(o)]), f2.push_back(f[static_cast<std::size_t>(o)]);
    simplex = s2, f = f2;
    if (f[4] - f[0] < 1e-7) break;
    std::array<double, 4> c{0, 0, 0, 0};
    for (int i = 0; i < 4; ++i)
      for (int k = 0; k < 4; ++k)
        c[static_cast<std::size_t>(k)] += simplex[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)] / 4;
    auto along = [&](double t) {
      std::array<double, 4> x;
      for (int k = 0; k < 4; ++k)
        x[static_cast<std::size_t>(k)] = c[static_cast<std::size_t>(k)] +
                                         t * (simplex[4][static_cast<std::size_t>(k)] - c[static_cast<std::size_t>(k)]);
      return x;
    };
    const auto xr = along(-1);
    const double fr = cost(xr, nullptr);
    if (fr < f[0]) {
      const auto xe = along(-2);
      const double fe = cost(xe, nullptr);
      if (fe < fr)
        simplex[4] = xe, f[4] = fe;
      else
        simplex[4] = xr, f[4] = fr;
    } else if (fr < f[3]) {
      simplex[4] = xr, f[4] = fr;
    } else {
      const auto xc = along(0.5);
      const double fc = cost(xc, nullptr);
      if (fc < f[4]) {
        simplex[4] = xc, f[4] = fc;
      } else {
        for (int i = 1; i < 5; ++i) {
          for (int k = 0; k < 4; ++k)
            simplex[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)] =
                0.5 * (simplex[0][static_cast<std::size_t>(k)] +
                       simplex[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)]);
          f[static_cast<std::size_t>(i)] = cost(simplex[static_cast<std::size_t>(i)], nullptr);
        }
      }
    }
  }
  const std::size_t best = static_cast<std::size_t>(std::min_element(f.begin(), f.end()) - f.begin());
  Figure8Fit out;
  double turns = 1;
  out.residual = cost(simplex[best], &turns);
  out.geometry = make(simplex[best]);
  out.geometry.turns = turns;
  for (double* v : {&out.geometry.inner_radius_mm, &out.geometry.outer_radius_mm, &out.geometry.wing_centre_mm,
                    &out.geometry.height_mm})
    *v = std::round(*v * 100) / 100;
  out.geometry.turns = std::round(out.geometry.turns * 1000) / 1000;
  return out;
}

nlohmann::json fit_figure8_json(const Coil& reference) {
  const Figure8Fit f = fit_figure8(reference);
  const Figure8Geometry& g = f.geometry;
  nlohmann::json j = {{"reference", reference.name},
                      {"reference_source", reference.source},
                      {"relative_l2_residual", std::round(f.residual * 1e4) / 1e4},
                      {"geometry",
                       {{"inner_radius_mm", g.inner_radius_mm},
                        {"outer_radius_mm", g.outer_radius_mm},
                        {"turns", g.turns},
                        {"wing_centre_mm", g.wing_centre_mm},
                        {"height_mm", g.height_mm},
                        {"element_mm", 2.0},
                        {"direction", g.direction}}}};
  if (reference.didt_max_a_per_us) j["didt_max_a_per_us"] = *reference.didt_max_a_per_us;
  if (!reference.stimulator.empty()) j["stimulator"] = reference.stimulator;
  return j;
}

}  // namespace tmsplan::efield
