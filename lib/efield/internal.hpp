#pragma once
// Shared inside lib/efield only.
#include <nlohmann/json.hpp>

#include <string>

namespace tmsplan::efield::detail {

/// A file of the data directory (coil presets).
std::string data_file(const std::string& relative);
/// Reads and parses a JSON file; throws Error naming it.
nlohmann::json read_json(const std::string& path);

/// E = -(mu0/4pi) dI/dt sum m x R/|R|^3 with R in mm, m in m^2, dI/dt = 1 A/us:
/// 1e-7 * 1e6 * 1e6 (mm^-2 -> m^-2) = 1e5.
constexpr double kPrimaryScale = 1e5;

}  // namespace tmsplan::efield::detail
