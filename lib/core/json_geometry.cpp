#include "tmsplan/json_geometry.hpp"

#include <fmt/format.h>

#include <cmath>

#include "tmsplan/error.hpp"

namespace tmsplan {

namespace {

std::string type_name(const nlohmann::json& v) {
  if (v.is_null()) return "null (a NaN or infinity written by the producer?)";
  return v.type_name();
}

}  // namespace

nlohmann::json vec3_to_json(const Eigen::Vector3d& v, double scale) {
  return {std::round(v[0] * scale) / scale, std::round(v[1] * scale) / scale, std::round(v[2] * scale) / scale};
}

nlohmann::json mat4_to_json(const Eigen::Matrix4d& m, double scale) {
  nlohmann::json rows = nlohmann::json::array();
  for (int r = 0; r < 4; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int c = 0; c < 4; ++c) row.push_back(std::round(m(r, c) * scale) / scale);
    rows.push_back(row);
  }
  return rows;
}

double number_from_json(const nlohmann::json& v, const std::string& field, const std::string& source) {
  if (!v.is_number()) throw Error(fmt::format("{}: must be a number, got {}", field, type_name(v)), source);
  const double x = v.get<double>();
  if (!std::isfinite(x)) throw Error(fmt::format("{}: is not a finite number", field), source);
  return x;
}

Eigen::Vector3d vec3_from_json(const nlohmann::json& v, const std::string& field, const std::string& source) {
  if (!v.is_array()) throw Error(fmt::format("{}: must be an array of 3 numbers, got {}", field, type_name(v)), source);
  if (v.size() != 3) throw Error(fmt::format("{}: must have 3 numbers, has {}", field, v.size()), source);
  Eigen::Vector3d out;
  for (int i = 0; i < 3; ++i) out[i] = number_from_json(v[std::size_t(i)], fmt::format("{}[{}]", field, i), source);
  return out;
}

Eigen::Matrix4d mat4_from_json(const nlohmann::json& v, const std::string& field, const std::string& source) {
  if (!v.is_array() || v.size() != 4) throw Error(fmt::format("{}: must be a 4x4 array of rows", field), source);
  Eigen::Matrix4d m;
  for (int r = 0; r < 4; ++r) {
    const nlohmann::json& row = v[std::size_t(r)];
    if (!row.is_array() || row.size() != 4)
      throw Error(fmt::format("{}[{}]: must be a row of 4 numbers", field, r), source);
    for (int c = 0; c < 4; ++c)
      m(r, c) = number_from_json(row[std::size_t(c)], fmt::format("{}[{}][{}]", field, r, c), source);
  }
  return m;
}

}  // namespace tmsplan
