// Coil models: SimNIBS .ccd files, the parametric figure-8, presets, placing a coil in the world.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "internal.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"

namespace tmsplan::efield {

namespace {

// Extent of the dipoles in the coil plane and the centres of the two wings (moment-weighted
// centroids of the dipoles at x < 0 and x > 0), for pictures.
void describe_extent(Coil& coil) {
  double r = 0, wx[2] = {0, 0}, ww[2] = {0, 0};
  for (Eigen::Index i = 0; i < coil.position_m.cols(); ++i) {
    const Eigen::Vector3d p = coil.position_m.col(i) * 1000.0;
    r = std::max(r, std::hypot(p.x(), p.y()));
    const double w = coil.moment.col(i).norm();
    const int side = p.x() > 0 ? 1 : 0;
    wx[side] += w * p.x();
    ww[side] += w;
  }
  coil.casing_radius_mm = r;
  coil.wing_offset_mm = Eigen::Vector2d(ww[0] > 0 ? wx[0] / ww[0] : 0, ww[1] > 0 ? wx[1] / ww[1] : 0);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

Coil read_ccd(const std::string& path) {
  check_input_path(path);
  const std::string text = read_file(path, 64u << 20);
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  Coil coil;
  coil.source = path;
  coil.file = path;
  const auto fail = [&](const std::string& what) {
    throw Error(fmt::format("not a valid .ccd coil file: {} (line {})", what, line_no), path);
  };
  // Line 1: "# <name>.ccd version 1.0 ...; dIdtmax=114.73;...;stimulator=...;coilname=D70;"
  if (!std::getline(in, line)) fail("empty file");
  ++line_no;
  line = trim(line);
  if (line.empty() || line[0] != '#') fail("the first line must be the '#' header");
  std::map<std::string, std::string> keys;
  {
    std::istringstream h(line.substr(1));
    std::string item;
    while (std::getline(h, item, ';')) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) continue;
      keys[trim(item.substr(0, eq))] = trim(item.substr(eq + 1));
    }
  }
  if (auto it = keys.find("dIdtmax"); it != keys.end()) {
    // Some files list two values (monophasic, biphasic); the first is the one used at 100 % MSO.
    const std::string v = it->second.substr(0, it->second.find(','));
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || !std::isfinite(d) || d <= 0) fail("dIdtmax '" + it->second + "' is not a positive number");
    coil.didt_max_a_per_us = d;
  }
  if (auto it = keys.find("stimulator"); it != keys.end()) coil.stimulator = it->second;
  if (auto it = keys.find("coilname"); it != keys.end()) coil.name = it->second;
  if (coil.name.empty()) {
    const auto slash = path.find_last_of('/');
    coil.name = path.substr(slash == std::string::npos ? 0 : slash + 1);
    if (coil.name.size() > 4 && coil.name.substr(coil.name.size() - 4) == ".ccd")
      coil.name.resize(coil.name.size() - 4);
  }
  // Line 2: the number of dipoles.
  long count = -1;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    char* end = nullptr;
    count = std::strtol(line.c_str(), &end, 10);
    if (end == line.c_str() || trim(end) != "" || count <= 0 || count > 10000000)
      fail("expected the number of dipoles, got '" + line + "'");
    break;
  }
  if (count < 0) fail("no dipole count");
  std::vector<double> values;
  // A dipole line takes at least 12 bytes ("0 0 0 0 0 0\n"): a small file announcing millions of
  // dipoles does not reserve for them.
  values.reserve(std::min(static_cast<std::size_t>(count), text.size() / 12 + 1) * 6);
  long rows = 0;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (rows == count) fail(fmt::format("more dipoles than the {} the file announces", count));
    const char* s = line.c_str();
    for (int k = 0; k < 6; ++k) {
      char* end = nullptr;
      const double v = std::strtod(s, &end);
      if (end == s) fail(fmt::format("expected 6 numbers (x y z mx my mz), found {}", k));
      if (!std::isfinite(v)) fail("a value is not finite");
      values.push_back(v);
      s = end;
    }
    if (trim(s) != "") fail("more than 6 values on a dipole line");
    ++rows;
  }
  if (rows != count) {
    line_no = line_no + 1;
    fail(fmt::format("the file announces {} dipoles but holds {} (truncated?)", count, rows));
  }
  coil.position_m.resize(3, count);
  coil.moment.resize(3, count);
  for (long i = 0; i < count; ++i) {
    coil.position_m.col(i) = Eigen::Vector3d(values[6 * i], values[6 * i + 1], values[6 * i + 2]);
    coil.moment.col(i) = Eigen::Vector3d(values[6 * i + 3], values[6 * i + 4], values[6 * i + 5]);
    if (coil.position_m.col(i).norm() > 1.0)
      fail(fmt::format("dipole {} lies {:.2f} m from the coil centre (positions are in metres)", i + 1,
                       coil.position_m.col(i).norm()));
  }
  if (coil.moment.norm() == 0) fail("all dipole moments are zero");
  describe_extent(coil);
  return coil;
}

Coil figure8(const Figure8Geometry& g, const std::string& name) {
  if (!(g.inner_radius_mm >= 0 && g.outer_radius_mm > g.inner_radius_mm && g.turns > 0 && g.element_mm > 0.1 &&
        g.wing_centre_mm >= g.outer_radius_mm * 0.5 && g.height_mm >= 0))
    throw Error(fmt::format("invalid figure-8 geometry (radii {}..{} mm, {} turns, wings at +-{} mm, element {} mm)",
                            g.inner_radius_mm, g.outer_radius_mm, g.turns, g.wing_centre_mm, g.element_mm));
  // A flat spiral of `turns` turns between the two radii is a sheet of z-dipoles whose density
  // (per unit current) is the number of turns enclosing the point: `turns` inside the inner
  // radius, falling linearly to 0 at the outer radius. Rings of width ~element, each split into
  // ~element-long pieces; moment = density (at the ring's middle radius) x piece area.
  std::vector<Eigen::Vector3d> pos, mom;
  const double ro = g.outer_radius_mm, ri = g.inner_radius_mm;
  const int rings = std::max(2, static_cast<int>(std::ceil(ro / g.element_mm)));
  const double dr = ro / rings;
  for (int side = 0; side < 2; ++side) {
    const double cx = side == 0 ? -g.wing_centre_mm : g.wing_centre_mm;
    const double sense = side == 0 ? 1.0 : -1.0;
    for (int j = 0; j < rings; ++j) {
      const double r0 = j * dr, r1 = (j + 1) * dr;
      // Density averaged over the ring (exact for the piecewise-linear profile, by sampling).
      double dens = 0;
      const int sub = 16;
      double wsum = 0;
      for (int s = 0; s < sub; ++s) {
        const double rho = r0 + (s + 0.5) * dr / sub;
        const double n = rho <= ri ? g.turns : g.turns * std::max(0.0, (ro - rho) / (ro - ri));
        dens += n * rho;
        wsum += rho;
      }
      dens /= wsum;
      const double area = M_PI * (r1 * r1 - r0 * r0);
      const double rc = j == 0 ? 0.0 : 0.5 * (r0 + r1);
      const int pieces = j == 0 ? 1 : std::max(6, static_cast<int>(std::ceil(2 * M_PI * rc / g.element_mm)));
      for (int k = 0; k < pieces; ++k) {
        const double a = 2 * M_PI * (k + 0.5 * (j % 2)) / pieces;
        pos.emplace_back(cx + rc * std::cos(a), rc * std::sin(a), -g.height_mm);
        mom.emplace_back(0, 0, sense * dens * area / pieces * 1e-6);  // mm^2 -> m^2
      }
    }
  }
  Coil coil;
  coil.name = name;
  coil.source = "built-in flat figure-8 model";
  coil.position_m.resize(3, static_cast<Eigen::Index>(pos.size()));
  coil.moment.resize(3, static_cast<Eigen::Index>(pos.size()));
  for (std::size_t i = 0; i < pos.size(); ++i) {
    coil.position_m.col(static_cast<Eigen::Index>(i)) = pos[i] * 1e-3;
    coil.moment.col(static_cast<Eigen::Index>(i)) = mom[i];
  }
  // Orientation: the primary field 20 mm under the centre along +y for direction +1.
  Dipoles d{coil.position_m * 1000.0, coil.moment};
  const Eigen::Matrix3Xd e = primary_field(d, Eigen::Vector3d(0, 0, 20));
  if ((e(1, 0) > 0) != (g.direction > 0)) coil.moment = -coil.moment;
  coil.geometry = {{"inner_radius_mm", g.inner_radius_mm},
                   {"outer_radius_mm", g.outer_radius_mm},
                   {"turns", g.turns},
                   {"wing_centre_mm", g.wing_centre_mm},
                   {"height_mm", g.height_mm},
                   {"element_mm", g.element_mm},
                   {"direction", g.direction}};
  coil.casing_radius_mm = g.wing_centre_mm + g.outer_radius_mm;
  coil.wing_offset_mm = Eigen::Vector2d(-g.wing_centre_mm, g.wing_centre_mm);
  return coil;
}

std::vector<std::string> preset_names() {
  const nlohmann::json presets = detail::read_json(detail::data_file("coils/presets.json"));
  std::vector<std::string> names;
  for (const auto& p : presets.at("presets")) names.push_back(p.at("name").get<std::string>());
  return names;
}

Coil load_coil(const std::string& name_or_path) {
  const bool looks_like_file = name_or_path.find('/') != std::string::npos ||
                               (name_or_path.size() > 4 && name_or_path.substr(name_or_path.size() - 4) == ".ccd");
  if (looks_like_file) return read_ccd(name_or_path);
  const std::string presets_path = detail::data_file("coils/presets.json");
  const nlohmann::json presets = detail::read_json(presets_path);
  std::vector<std::string> names;
  try {
    for (const auto& p : presets.at("presets")) {
      names.push_back(p.at("name").get<std::string>());
      if (names.back() != name_or_path) continue;
      const auto& g = p.at("geometry");
      Figure8Geometry geo;
      geo.inner_radius_mm = g.at("inner_radius_mm").get<double>();
      geo.outer_radius_mm = g.at("outer_radius_mm").get<double>();
      geo.turns = g.at("turns").get<double>();
      geo.wing_centre_mm = g.at("wing_centre_mm").get<double>();
      geo.height_mm = g.at("height_mm").get<double>();
      geo.element_mm = g.at("element_mm").get<double>();
      geo.direction = g.at("direction").get<int>();
      Coil c = figure8(geo, name_or_path);
      c.source = p.at("source").get<std::string>();
      if (p.contains("didt_max_a_per_us") && p["didt_max_a_per_us"].is_number())
        c.didt_max_a_per_us = p["didt_max_a_per_us"].get<double>();
      if (p.contains("stimulator")) c.stimulator = p["stimulator"].get<std::string>();
      return c;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("malformed coil preset: ") + e.what(), presets_path);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown coil '" + name_or_path + "' (presets: " + list + "; or give a .ccd file path)");
}

void check_pose(const Eigen::Matrix4d& pose, const std::string& what) {
  if (!pose.allFinite()) throw Error(what + " has non-finite entries");
  const Eigen::Matrix3d r = pose.topLeftCorner<3, 3>();
  const double orth = (r.transpose() * r - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff();
  if (orth > 1e-4)
    throw Error(fmt::format("{} is not a rotation: its axes are not orthonormal (deviation {:.2g})", what, orth));
  if (r.determinant() < 0) throw Error(what + " is not a rotation: its axes are left-handed (determinant -1)");
  if (pose.row(3).cwiseAbs().sum() - 1.0 > 1e-9 || std::abs(pose(3, 3) - 1.0) > 1e-9)
    throw Error(what + " is not a pose: its last row must be 0 0 0 1");
}

Dipoles place(const Coil& coil, const Eigen::Matrix4d& pose) {
  const Eigen::Matrix3d r = pose.topLeftCorner<3, 3>();
  const Eigen::Vector3d t = pose.topRightCorner<3, 1>();
  Dipoles d;
  d.position_mm = (r * (coil.position_m * 1000.0)).colwise() + t;
  d.moment = r * coil.moment;
  // Clusters: cells of kClusterCell mm of the coil's frame (so they do not depend on the pose),
  // split by the sign pattern of the moments so that no cluster's moments cancel.
  constexpr double kClusterCell = 10.0;
  std::map<std::array<long, 4>, std::vector<int>> cells;
  for (Eigen::Index k = 0; k < coil.position_m.cols(); ++k) {
    const Eigen::Vector3d q = coil.position_m.col(k) * 1000.0 / kClusterCell;
    const Eigen::Vector3d m = coil.moment.col(k);
    const long sign = (m.x() > 0) + 2 * (m.y() > 0) + 4 * (m.z() > 0);
    cells[{std::lround(std::floor(q.x())), std::lround(std::floor(q.y())), std::lround(std::floor(q.z())), sign}]
        .push_back(static_cast<int>(k));
  }
  d.cluster_first.push_back(0);
  for (const auto& [key, members] : cells) {
    d.cluster_order.insert(d.cluster_order.end(), members.begin(), members.end());
    d.cluster_first.push_back(static_cast<int>(d.cluster_order.size()));
  }
  return d;
}

}  // namespace tmsplan::efield
