#pragma once
// Shared inside lib/efield only.
#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tmsplan::efield::detail {

/// A file of the data directory (coil presets).
std::string data_file(const std::string& relative);
/// Reads and parses a JSON file; throws Error naming it.
nlohmann::json read_json(const std::string& path);

/// E = -(mu0/4pi) dI/dt sum m x R/|R|^3 with R in mm, m in m^2, dI/dt = 1 A/us:
/// 1e-7 * 1e6 * 1e6 (mm^-2 -> m^-2) = 1e5.
constexpr double kPrimaryScale = 1e5;

/// P A = L U with partial pivoting, factored and solved on all threads; the bytes do not depend
/// on the thread count (lu.cpp).
class DenseLu {
 public:
  void compute(const Eigen::MatrixXd& a);
  /// Solves A X = B for the columns of B.
  Eigen::MatrixXd solve(const Eigen::MatrixXd& b) const;
  bool singular() const { return singular_; }

 private:
  Eigen::MatrixXf lu_;
  std::vector<Eigen::Index> piv_;
  bool singular_ = false;
};

}  // namespace tmsplan::efield::detail
