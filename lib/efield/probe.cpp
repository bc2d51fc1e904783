// `efield probe`: the field of one coil pose at listed points, for comparing solvers.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>
#include <sstream>

#include "internal.hpp"
#include "tmsplan/clock.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/json_geometry.hpp"
#include "tmsplan/log.hpp"

namespace tmsplan::efield {

namespace {

std::vector<double> numbers_of(std::string line) {
  for (char& c : line)
    if (c == ',' || c == '\t' || c == ';') c = ' ';
  std::istringstream in(line);
  std::vector<double> v;
  std::string tok;
  while (in >> tok) {
    char* end = nullptr;
    const double d = std::strtod(tok.c_str(), &end);
    if (end == tok.c_str() || *end != '\0') throw Error("'" + tok + "' is not a number");
    if (!std::isfinite(d)) throw Error("'" + tok + "' is not finite");
    v.push_back(d);
  }
  return v;
}

Eigen::Matrix4d read_pose(const std::string& path, const std::string& target) {
  check_input_path(path);
  const std::string text = read_file(path, 64u << 20);
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(std::string("not valid JSON: ") + e.what(), path);
    }
    if (!doc.contains("targets") || !doc["targets"].is_array() || doc["targets"].empty())
      throw Error("no targets in the file", path);
    for (const auto& t : doc["targets"]) {
      if (!target.empty() && t.value("name", "") != target) continue;
      if (!t.contains("coil_pose_ras")) throw Error("target " + t.value("name", "?") + " has no coil_pose_ras", path);
      return mat4_from_json(t["coil_pose_ras"], "target " + t.value("name", "?") + ": coil_pose_ras", path);
    }
    throw Error("no target named '" + target + "'", path);
  }
  // A text matrix: 4 rows of 4 numbers (or 3 rows: the last row is then 0 0 0 1).
  std::istringstream in(text);
  std::string line;
  std::vector<std::vector<double>> rows;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[line.find_first_not_of(" \t\r")] == '#') continue;
    std::vector<double> v;
    try {
      v = numbers_of(line);
    } catch (const Error& e) {
      throw Error(fmt::format("pose matrix line {}: {}", no, e.what()), path);
    }
    if (v.size() != 4)
      throw Error(fmt::format("pose matrix line {}: expected 4 numbers, found {}", no, v.size()), path);
    rows.push_back(v);
  }
  if (rows.size() != 3 && rows.size() != 4)
    throw Error(fmt::format("a pose matrix has 4 rows of 4 numbers, found {} rows", rows.size()), path);
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (int c = 0; c < 4; ++c) m(static_cast<int>(r), c) = rows[r][static_cast<std::size_t>(c)];
  return m;
}

Eigen::Matrix3Xd read_points(const std::string& path) {
  check_input_path(path);
  std::istringstream in(read_file(path, 512u << 20));
  std::string line;
  std::vector<Eigen::Vector3d> pts;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    std::vector<double> v;
    try {
      v = numbers_of(line);
    } catch (const Error& e) {
      if (pts.empty() && no == 1) continue;  // a header line such as "x,y,z"
      throw Error(fmt::format("points line {}: {}", no, e.what()), path);
    }
    if (v.size() != 3) throw Error(fmt::format("points line {}: expected x,y,z, found {} numbers", no, v.size()), path);
    pts.emplace_back(v[0], v[1], v[2]);
  }
  if (pts.empty()) throw Error("no points in the file", path);
  Eigen::Matrix3Xd m(3, static_cast<Eigen::Index>(pts.size()));
  for (std::size_t i = 0; i < pts.size(); ++i) m.col(static_cast<Eigen::Index>(i)) = pts[i];
  return m;
}

}  // namespace

std::string probe(const ProbeParams& p) {
  if (!(p.didt > 0) || !std::isfinite(p.didt)) throw UsageError("--didt must be a positive number (A/us)");
  const Coil coil = load_coil(p.coil);
  const Eigen::Matrix4d pose = read_pose(p.pose, p.target);
  try {
    check_pose(pose, "the pose");
  } catch (const Error& e) {
    throw Error(e.what(), p.pose);
  }
  const Eigen::Matrix3Xd pts = read_points(p.points);
  const Dipoles d = place(coil, pose);
  std::unique_ptr<FieldModel> model;
  if (p.model == "sphere") {
    if (!p.sphere_centre) throw UsageError("--model sphere needs --sphere-centre X,Y,Z");
    model = std::make_unique<SphereModel>(*p.sphere_centre);
  } else if (p.model == "bem") {
    if (p.surface.empty()) throw UsageError("--model bem needs --surface FILE.surf.gii");
    try {
      model = std::make_unique<BemModel>(read_gifti(p.surface));
    } catch (const Error& e) {
      throw Error(e.what(), p.surface);
    }
  } else if (p.model == "primary") {
    const double t0 = now_seconds();
    const Eigen::Matrix3Xd e = primary_field(d, pts);
    log::info(fmt::format("field at {} points from {} dipoles (primary model) in {:.1f} ms", pts.cols(),
                          d.position_mm.cols(), 1000 * (now_seconds() - t0)));
    return format_points_field(pts, e * p.didt);
  } else {
    throw UsageError("--model must be sphere, bem or primary");
  }
  try {
    model->check_geometry(d, pts);
  } catch (const Error& e) {
    throw Error(e.what(), p.points);
  }
  const double t0 = now_seconds();
  const Eigen::Matrix3Xd e = model->field(d, pts);
  log::info(fmt::format("field at {} points from {} dipoles ({} model) in {:.1f} ms", pts.cols(), d.position_mm.cols(),
                        model->name(), 1000 * (now_seconds() - t0)));
  return format_points_field(pts, e * p.didt);
}

}  // namespace tmsplan::efield
