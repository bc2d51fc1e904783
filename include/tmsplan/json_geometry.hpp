#pragma once
/// Points, directions and 4x4 poses in JSON documents (targets.json, targets_efield.json, poses):
/// one writer with the files' rounding and one checked reader. Defined in lib/core/json_geometry.cpp.
#include <nlohmann/json.hpp>

#include <Eigen/Core>

#include <string>

namespace tmsplan {

/// [x, y, z], each rounded to 1/scale (targets.json: 1e-4 mm).
nlohmann::json vec3_to_json(const Eigen::Vector3d& v, double scale = 1e4);
/// Four rows of four numbers, each rounded to 1/scale (coil poses: 1e-6).
nlohmann::json mat4_to_json(const Eigen::Matrix4d& m, double scale = 1e6);

/// A finite number; throws Error("<field>: must be a number, got string", source) and the like.
double number_from_json(const nlohmann::json& v, const std::string& field, const std::string& source);
/// An array of 3 finite numbers; throws Error naming `field` and `source`.
Eigen::Vector3d vec3_from_json(const nlohmann::json& v, const std::string& field, const std::string& source);
/// An array of 4 rows of 4 finite numbers (no check of the bottom row); throws Error naming the
/// field (and the row) and `source`.
Eigen::Matrix4d mat4_from_json(const nlohmann::json& v, const std::string& field, const std::string& source);

}  // namespace tmsplan
