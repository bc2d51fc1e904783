#pragma once
// Shared inside lib/efield only.
#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tmsplan::efield {
struct Dipoles;
}

namespace tmsplan::efield::detail {

/// A file of the data directory (coil presets).
std::string data_file(const std::string& relative);
/// Reads and parses a JSON file; throws Error naming it.
nlohmann::json read_json(const std::string& path);

/// E = -(mu0/4pi) dI/dt sum m x R/|R|^3 with R in mm, m in m^2, dI/dt = 1 A/us:
/// 1e-7 * 1e6 * 1e6 (mm^-2 -> m^-2) = 1e5.
constexpr double kPrimaryScale = 1e5;

/// 64 points in structure-of-arrays form with field sums, for kernels whose inner loop runs over
/// the points (no reduction: it vectorises; each point sums its sources in a fixed order,
/// whatever the blocking or the thread count). Points past the end repeat the last one.
/// T = float for sums that feed the single-precision solve (twice the lanes, cheaper sqrt/div).
template <typename T> struct PointBlockT {
  static constexpr std::int64_t kSize = 64;
  alignas(64) T px[kSize], py[kSize], pz[kSize], ex[kSize], ey[kSize], ez[kSize];
  std::int64_t first = 0, n = 0;  ///< block index * kSize, and the real points in it
  Eigen::Vector3d lo, hi;         ///< the box of the block's points
  /// Block `blk` of the columns of pts; the sums set to 0.
  void load(const Eigen::Matrix3Xd& pts, std::int64_t blk);
  /// Squared distance from p to the box of the block's points.
  double distance2(const Eigen::Vector3d& p) const { return (lo - p).cwiseMax(p - hi).cwiseMax(0.0).squaredNorm(); }
};
using PointBlock = PointBlockT<double>;

/// primary_field_clustered (efield.hpp) summed in single precision: for the right-hand side of
/// the boundary-element system, whose solve is single precision (lu.cpp).
Eigen::Matrix3Xd primary_field_single(const Dipoles& dipoles, const Eigen::Matrix3Xd& pts, double far);

/// int_T (r - r')/|r - r'|^3 dS' over the flat triangle (a, b, c), in closed form: the normal
/// part is the solid angle the triangle subtends from r, the in-plane part the sum over its edges
/// of the outward edge normal times int_edge dl/|r - r'| (bem.cpp). r must not lie on an edge.
Eigen::Vector3d triangle_field(const Eigen::Vector3d& r, const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                               const Eigen::Vector3d& c);

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
