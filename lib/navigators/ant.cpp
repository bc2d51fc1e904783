// ANT Neuro visor2 marker files (.mrk, JSON). With CoilAxesConvention "simnibs" and
// CoordinateSystem "ASSOCIATED_IMAGE" (the qform world of the T1 named in AssociatedImageInfo),
// RigidTransformMatrix4x4 is exactly our pose: no axis or frame conversion.
#include "tmsplan/error.hpp"
#include "tmsplan/navigators.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>

namespace tmsplan::nav {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

const json& member(const json& obj, const char* key, const std::string& source, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) throw Error(fmt::format("{}: missing field '{}'", where, key), source);
  return obj.at(key);
}

std::string string_member(const json& obj, const char* key, const std::string& source, const std::string& where) {
  const json& v = member(obj, key, source, where);
  if (!v.is_string()) throw Error(fmt::format("{}: field '{}' is not a string", where, key), source);
  return v.get<std::string>();
}

double number(const json& v, const std::string& source, const std::string& what) {
  if (!v.is_number()) throw Error(fmt::format("{} is not a number", what), source);
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw Error(fmt::format("{} is not finite", what), source);
  return d;
}

template <std::size_t N>
std::array<double, N> numbers(const json& obj, const char* key, const std::string& source, const std::string& where) {
  const json& v = member(obj, key, source, where);
  if (!v.is_array() || v.size() != N) {
    throw Error(fmt::format("{}: field '{}' is not an array of {} numbers", where, key, N), source);
  }
  std::array<double, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = number(v[i], source, fmt::format("{}: {}[{}]", where, key, i));
  return out;
}

void expect_value(const json& target, const char* key, const char* expected, const std::string& source,
                  const std::string& where) {
  const std::string v = string_member(target, key, source, where);
  if (v != expected) {
    throw Error(fmt::format("{}: {} '{}' is not supported (only '{}')", where, key, v, expected), source);
  }
}

}  // namespace

std::string write_ant_markers(const std::vector<Marker>& markers, const AntWriteOptions& options) {
  const AntImageInfo image = options.image.value_or(AntImageInfo{});
  ordered_json doc;
  doc["Configuration"]["SourceInfo"] = {{"AppName", "tmsplan"}, {"AppVersion", options.app_version}};
  doc["Configuration"]["AssociatedImageInfo"] = {
      {"NIfTI_quatern", image.quatern}, {"NIfTI_qoffset", image.qoffset}, {"NIfTI_pixdim", image.pixdim}};
  ordered_json list = ordered_json::array();
  for (const Marker& mk : markers) {
    const Pose pose = detail::pose_for_writing(mk.pose, fmt::format("marker '{}'", mk.name));
    ordered_json rows = ordered_json::array();
    for (int r = 0; r < 4; ++r) {
      rows.push_back({pose.m(r, 0), pose.m(r, 1), pose.m(r, 2), pose.m(r, 3)});
    }
    ordered_json target;
    target["Name"] = mk.name;
    target["CoordinateSystem"] = "ASSOCIATED_IMAGE";
    target["PositionalUnit"] = "mm";
    target["CoilAxesConvention"] = "simnibs";
    target["CoilInfo"] = {{"Type", options.coil_type}, {"Id", options.coil_id}};
    target["CoilPose"]["RigidTransformMatrix4x4"] = rows;
    list.push_back({{"CoilTarget", target}});
  }
  doc["TargetMarkers"] = list;
  try {
    return doc.dump(2) + "\n";
  } catch (const json::exception& e) {  // invalid UTF-8 in a name
    throw Error(fmt::format("cannot write ANT markers: {}", e.what()));
  }
}

AntMarkers read_ant_markers(std::string_view text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(fmt::format("not valid JSON: {}", e.what()), source);
  }
  if (!doc.is_object()) throw Error("not an ANT marker file: the top level is not a JSON object", source);
  AntMarkers result;
  if (doc.contains("Configuration") && doc["Configuration"].is_object() &&
      doc["Configuration"].contains("AssociatedImageInfo")) {
    const json& info = doc["Configuration"]["AssociatedImageInfo"];
    const std::string where = "Configuration.AssociatedImageInfo";
    AntImageInfo image;
    image.quatern = numbers<3>(info, "NIfTI_quatern", source, where);
    image.qoffset = numbers<3>(info, "NIfTI_qoffset", source, where);
    image.pixdim = numbers<4>(info, "NIfTI_pixdim", source, where);
    result.image = image;
  }
  const json& list = member(doc, "TargetMarkers", source, "top level");
  if (!list.is_array()) throw Error("TargetMarkers is not an array", source);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = fmt::format("TargetMarkers[{}]", i);
    if (!list[i].is_object()) throw Error(where + " is not an object", source);
    if (!list[i].contains("CoilTarget")) {
      ++result.skipped;
      continue;
    }
    const json& target = list[i]["CoilTarget"];
    const std::string at = where + ".CoilTarget";
    if (!target.is_object()) throw Error(at + " is not an object", source);
    expect_value(target, "CoordinateSystem", "ASSOCIATED_IMAGE", source, at);
    expect_value(target, "PositionalUnit", "mm", source, at);
    expect_value(target, "CoilAxesConvention", "simnibs", source, at);
    const json& pose =
        member(member(target, "CoilPose", source, at), "RigidTransformMatrix4x4", source, at + ".CoilPose");
    if (!pose.is_array() || pose.size() != 4) throw Error(at + ": RigidTransformMatrix4x4 is not 4 rows", source);
    Eigen::Matrix4d m;
    for (int r = 0; r < 4; ++r) {
      const json& row = pose[static_cast<std::size_t>(r)];
      if (!row.is_array() || row.size() != 4) {
        throw Error(fmt::format("{}: RigidTransformMatrix4x4 row {} is not 4 numbers", at, r), source);
      }
      for (int c = 0; c < 4; ++c) {
        m(r, c) = number(row[static_cast<std::size_t>(c)], source, fmt::format("{}: matrix[{}][{}]", at, r, c));
      }
    }
    Marker mk;
    if (target.contains("Name")) mk.name = string_member(target, "Name", source, at);
    mk.pose = detail::checked_pose(m, source, at);
    result.markers.push_back(std::move(mk));
  }
  return result;
}

}  // namespace tmsplan::nav
