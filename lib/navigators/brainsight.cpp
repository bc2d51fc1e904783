// Brainsight (Rogue Research) tab-separated export: header comment lines, then sections each
// introduced by a "# <Kind> Name\t..." column header. Only the "# Target Name" section is read.
#include "tmsplan/error.hpp"
#include "tmsplan/navigators.hpp"

#include <fmt/format.h>

#include <array>

namespace tmsplan::nav {

namespace {

using detail::parse_number;

constexpr int kMinVersion = 7;
constexpr int kMaxVersion = 14;

constexpr std::array<const char*, 12> kPoseColumns = {"Loc. X", "Loc. Y", "Loc. Z", "m0n0", "m0n1", "m0n2",
                                                      "m1n0",   "m1n1",   "m1n2",   "m2n0", "m2n1", "m2n2"};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "# Sample Name\t...", "# Electrode Name\t...", "# Session Name\t..." and the like.
bool is_section_header(std::string_view line) {
  if (!starts_with(line, "# ")) return false;
  const std::size_t tab = line.find('\t');
  const std::string_view first = line.substr(0, tab);
  return tab != std::string_view::npos && first.size() >= 7 && first.substr(first.size() - 5) == " Name";
}

std::string refusal(std::string_view system) {
  if (system == "Brainsight") {
    return "coordinate system 'Brainsight' (Brainsight's internal frame, origin at a corner voxel) cannot "
           "be converted without the image; export as NIfTI:Aligned";
  }
  if (system == "World") {
    return "coordinate system 'World' (DICOM-based project) is refused: its relation to the T1's NIfTI RAS "
           "frame depends on the DICOM conversion; export as NIfTI:Aligned";
  }
  if (system.find("MNI") != std::string_view::npos || system.find("Talairach") != std::string_view::npos) {
    return fmt::format("coordinate system '{}' is a template space, not the subject's T1; export as "
                       "NIfTI:Aligned",
                       system);
  }
  return fmt::format("unknown coordinate system '{}'; export as NIfTI:Aligned", system);
}

}  // namespace

bool brainsight_system_is_ras(std::string_view s) {
  return s == "NIfTI:Aligned" || s == "NIfTI:Scanner" || s == "NIfTI:Q:Aligned" || s == "NIfTI:S:Aligned" ||
         s == "NIfTI:Q:Scanner" || s == "NIfTI:S:Scanner";
}

std::string write_brainsight_targets(const std::vector<Marker>& markers, const BrainsightWriteOptions& options) {
  if (options.version < kMinVersion || options.version > kMaxVersion) {
    throw Error(fmt::format("cannot write Brainsight version {} (supported {}..{})", options.version, kMinVersion,
                            kMaxVersion));
  }
  if (!brainsight_system_is_ras(options.coordinate_system)) {
    throw Error("cannot write Brainsight targets: " + refusal(options.coordinate_system));
  }
  if (options.created_by.find_first_of("\r\n") != std::string::npos) {
    throw Error("cannot write Brainsight targets: 'created by' contains a line break");
  }
  std::string out;
  out += fmt::format("# Version: {}\n", options.version);
  out += fmt::format("# Coordinate system: {}\n", options.coordinate_system);
  out += fmt::format("# Created by: {}\n", options.created_by);
  out += options.version <= 7 ? "# units" : "# Units";
  out += ": millimetres, degrees, milliseconds, and microvolts\n";
  out += "# Encoding: UTF-8\n";
  out += "# Notes: Each column is delimited by a tab. Each value within a column is delimited by a semicolon.\n";
  out += "# Target Name";
  for (const char* c : kPoseColumns) out += fmt::format("\t{}", c);
  out += '\n';
  for (const Marker& mk : markers) {
    detail::check_tsv_name(mk.name, "Brainsight target");
    const Pose pose = detail::pose_for_writing(mk.pose, fmt::format("target '{}'", mk.name));
    const Eigen::Matrix4d m = ours_to_brainsight(pose.m);
    out += mk.name;
    for (int r = 0; r < 3; ++r) out += '\t' + detail::fixed(m(r, 3), 4);
    for (int axis = 0; axis < 3; ++axis) {
      for (int comp = 0; comp < 3; ++comp) out += '\t' + detail::fixed(m(comp, axis), 6);
    }
    out += '\n';
  }
  return out;
}

BrainsightTargets read_brainsight_targets(std::string_view text, const std::string& source) {
  const auto lines = detail::split_lines(text);
  BrainsightTargets result;
  bool have_version = false;
  bool have_system = false;
  std::size_t i = 0;
  // Header: comment lines up to the first section header.
  for (; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.empty()) continue;
    if (is_section_header(line)) break;
    if (!starts_with(line, "#")) {
      throw Error(fmt::format("line {}: data before any column header", i + 1), source);
    }
    if (starts_with(line, "# Version:")) {
      result.version =
          static_cast<int>(detail::parse_integer(line.substr(10), source, "Brainsight version", 0, 1000000));
      if (result.version < kMinVersion || result.version > kMaxVersion) {
        throw Error(
            fmt::format("Brainsight version {} is not supported ({}..{})", result.version, kMinVersion, kMaxVersion),
            source);
      }
      have_version = true;
    } else if (starts_with(line, "# Coordinate system:")) {
      std::string_view sys = line.substr(20);
      while (!sys.empty() && sys.front() == ' ') sys.remove_prefix(1);
      while (!sys.empty() && sys.back() == ' ') sys.remove_suffix(1);
      result.coordinate_system = std::string(sys);
      have_system = true;
    } else if (starts_with(line, "# Encoding:")) {
      std::string_view enc = line.substr(11);
      while (!enc.empty() && enc.front() == ' ') enc.remove_prefix(1);
      if (enc != "UTF-8") throw Error(fmt::format("encoding '{}' is not supported (UTF-8)", enc), source);
    }
  }
  if (lines.empty() || (lines.size() == 1 && lines[0].empty())) throw Error("empty Brainsight file", source);
  if (!have_version) throw Error("not a Brainsight export: no '# Version:' line", source);
  if (!have_system) throw Error("no '# Coordinate system:' line", source);
  if (!brainsight_system_is_ras(result.coordinate_system)) throw Error(refusal(result.coordinate_system), source);

  std::array<std::size_t, 12> col{};
  bool in_targets = false;
  std::size_t needed = 0;
  for (; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.empty()) continue;
    if (starts_with(line, "#")) {
      in_targets = starts_with(line, "# Target Name\t");
      if (!in_targets) continue;
      result.has_target_section = true;
      const auto names = detail::split(line.substr(2), '\t');
      for (std::size_t k = 0; k < kPoseColumns.size(); ++k) {
        std::size_t found = names.size();
        for (std::size_t j = 0; j < names.size(); ++j) {
          if (names[j] == kPoseColumns[k]) found = j;
        }
        if (found == names.size()) {
          throw Error(fmt::format("line {}: target column '{}' is missing", i + 1, kPoseColumns[k]), source);
        }
        col[k] = found;
        needed = std::max(needed, found + 1);
      }
      continue;
    }
    if (!in_targets) continue;
    const auto fields = detail::split(line, '\t');
    const std::string name(fields[0]);
    const std::string what = fmt::format("line {} (target '{}')", i + 1, name.substr(0, 40));
    if (fields.size() < needed) {
      throw Error(fmt::format("{}: {} fields, expected {}", what, fields.size(), needed), source);
    }
    std::array<double, 12> v{};
    for (std::size_t k = 0; k < v.size(); ++k) {
      v[k] = parse_number(fields[col[k]], source, fmt::format("{} {}", what, kPoseColumns[k]));
    }
    Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
    for (int r = 0; r < 3; ++r) m(r, 3) = v[r];
    for (int axis = 0; axis < 3; ++axis) {
      for (int comp = 0; comp < 3; ++comp) m(comp, axis) = v[3 + 3 * axis + comp];  // mKnJ: axis K, component J
    }
    Marker mk;
    mk.name = name;
    mk.pose = detail::checked_pose(brainsight_to_ours(m), source, what);
    result.targets.push_back(std::move(mk));
  }
  return result;
}

}  // namespace tmsplan::nav
