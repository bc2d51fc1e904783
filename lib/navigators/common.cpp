// Helpers shared by the navigator format modules: strict number parsing, pose checks, axis
// conventions, line splitting.
#include "tmsplan/error.hpp"
#include "tmsplan/navigators.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>

#include <charconv>
#include <cmath>

namespace tmsplan::nav {

namespace {

Eigen::Matrix4d localite_flip() {
  Eigen::Matrix4d f = Eigen::Matrix4d::Zero();
  f(0, 2) = 1;
  f(1, 1) = -1;
  f(2, 0) = 1;
  f(3, 3) = 1;
  return f;
}

Eigen::Matrix4d brainsight_flip() { return Eigen::Vector4d(-1, 1, -1, 1).asDiagonal(); }

// How far a read rotation part may be from orthonormal: navigators store a little shear and
// Brainsight rounds to 3 or 4 decimals; anything worse is not a coil pose.
constexpr double kMaxOrthoError = 0.1;
constexpr double kMaxCentreMm = 10000.0;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string shown(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out(text.substr(0, kMax));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  if (text.size() > kMax) out += "...";
  return out;
}

// Empty string when m is an acceptable pose, else why not.
std::string pose_problem(const Eigen::Matrix4d& m) {
  if (!m.allFinite()) return "has a non-finite value";
  if (std::abs(m(3, 0)) > 1e-6 || std::abs(m(3, 1)) > 1e-6 || std::abs(m(3, 2)) > 1e-6 ||
      std::abs(m(3, 3) - 1) > 1e-6) {
    return "bottom row is not 0 0 0 1";
  }
  const Eigen::Matrix3d r = m.topLeftCorner<3, 3>();
  const double ortho = (r.transpose() * r - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff();
  const double det = r.determinant();
  if (ortho > kMaxOrthoError || det <= 0) {
    return fmt::format("rotation part is not a proper rotation (max |R'R - I| = {:.3g}, det = {:.3g})", ortho, det);
  }
  if (m.topRightCorner<3, 1>().norm() > kMaxCentreMm) return "centre is more than 10 m from the origin";
  return {};
}

}  // namespace

Eigen::Matrix4d localite_to_ours(const Eigen::Matrix4d& m_localite) { return m_localite * localite_flip(); }
Eigen::Matrix4d ours_to_localite(const Eigen::Matrix4d& m_ours) { return m_ours * localite_flip(); }
Eigen::Matrix4d brainsight_to_ours(const Eigen::Matrix4d& m_bs) { return m_bs * brainsight_flip(); }
Eigen::Matrix4d ours_to_brainsight(const Eigen::Matrix4d& m_ours) { return m_ours * brainsight_flip(); }

namespace detail {

double parse_number(std::string_view text, const std::string& source, const std::string& what) {
  std::string_view s = trim(text);
  std::string_view digits = s;
  bool plus = false;
  if (!digits.empty() && digits.front() == '+') {  // Localite writes "+0.5"
    digits.remove_prefix(1);
    plus = true;
  }
  double value = 0;
  const char* end = digits.data() + digits.size();
  auto [ptr, ec] = std::from_chars(digits.data(), end, value, std::chars_format::general);
  if (digits.empty() || ec != std::errc() || ptr != end || !std::isfinite(value) ||
      (plus && (digits.front() == '-' || digits.front() == '+'))) {
    throw Error(fmt::format("{}: '{}' is not a finite number", what, shown(text)), source);
  }
  return value;
}

long long parse_integer(std::string_view text, const std::string& source, const std::string& what, long long min,
                        long long max) {
  std::string_view s = trim(text);
  long long value = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (s.empty() || ec != std::errc() || ptr != end) {
    throw Error(fmt::format("{}: '{}' is not a whole number", what, shown(text)), source);
  }
  if (value < min || value > max) {
    throw Error(fmt::format("{}: {} is outside {}..{}", what, value, min, max), source);
  }
  return value;
}

Pose checked_pose(const Eigen::Matrix4d& m, const std::string& source, const std::string& what) {
  if (const std::string problem = pose_problem(m); !problem.empty()) {
    throw Error(fmt::format("{}: pose {}", what, problem), source);
  }
  return Pose(orthonormalize(m));
}

Pose pose_for_writing(const Pose& pose, const std::string& what) {
  if (const std::string problem = pose_problem(pose.m); !problem.empty()) {
    throw Error(fmt::format("cannot write {}: pose {}", what, problem));
  }
  return Pose(orthonormalize(pose.m));
}

std::string fixed(double value, int decimals) {
  std::string s = fmt::format("{:.{}f}", value, decimals);
  if (s.front() == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> fields;
  while (true) {
    const std::size_t pos = line.find(sep);
    fields.push_back(line.substr(0, pos));
    if (pos == std::string_view::npos) break;
    line.remove_prefix(pos + 1);
  }
  return fields;
}

void check_tsv_name(const std::string& name, const std::string& what) {
  if (name.find_first_of("\t\r\n") != std::string::npos) {
    throw Error(fmt::format("cannot write {}: name '{}' contains a tab or line break", what, shown(name)));
  }
  if (!name.empty() && name.front() == '#') {
    throw Error(fmt::format("cannot write {}: name '{}' starts with '#' (read back as a comment)", what, shown(name)));
  }
}

}  // namespace detail
}  // namespace tmsplan::nav
