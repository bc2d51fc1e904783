#include "tmsplan/geometry.hpp"

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>

namespace tmsplan {
namespace {
const Eigen::Vector3d kFlip(-1.0, -1.0, 1.0);
Eigen::Matrix4d flip4() {
  Eigen::Matrix4d d = Eigen::Matrix4d::Identity();
  d(0, 0) = -1.0;
  d(1, 1) = -1.0;
  return d;
}
}  // namespace

LpsPoint to_lps(const RasPoint& p) { return LpsPoint(p.v.cwiseProduct(kFlip)); }
RasPoint to_ras(const LpsPoint& p) { return RasPoint(p.v.cwiseProduct(kFlip)); }
LpsVector to_lps(const RasVector& d) { return LpsVector(d.v.cwiseProduct(kFlip)); }
RasVector to_ras(const LpsVector& d) { return RasVector(d.v.cwiseProduct(kFlip)); }
LpsMatrix to_lps(const RasMatrix& m) { return LpsMatrix(flip4() * m.m * flip4()); }
RasMatrix to_ras(const LpsMatrix& m) { return RasMatrix(flip4() * m.m * flip4()); }
LpsMatrix vox2lps_from_vox2ras(const RasMatrix& vox2ras) { return LpsMatrix(flip4() * vox2ras.m); }
RasMatrix vox2ras_from_vox2lps(const LpsMatrix& vox2lps) { return RasMatrix(flip4() * vox2lps.m); }

LpsMatrix pose_to_lps(const Pose& pose) { return LpsMatrix(flip4() * pose.m); }
Pose pose_from_lps(const LpsMatrix& pose) { return Pose(flip4() * pose.m); }

RasPoint voxel_to_ras(const RasMatrix& vox2ras, const VoxelIndex& ijk) {
  return RasPoint(vox2ras.m.topLeftCorner<3, 3>() * ijk.v + vox2ras.m.topRightCorner<3, 1>());
}

VoxelIndex ras_to_voxel(const RasMatrix& vox2ras, const RasPoint& p) {
  const Eigen::Matrix3d a = vox2ras.m.topLeftCorner<3, 3>();
  return VoxelIndex(a.partialPivLu().solve(p.v - vox2ras.m.topRightCorner<3, 1>()));
}

RasVector apply_direction(const RasMatrix& m, const RasVector& d) { return RasVector(m.m.topLeftCorner<3, 3>() * d.v); }

RasPoint apply(const RasMatrix& m, const RasPoint& p) {
  return RasPoint(m.m.topLeftCorner<3, 3>() * p.v + m.m.topRightCorner<3, 1>());
}

Eigen::Matrix4d orthonormalize(const Eigen::Matrix4d& m) {
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(m.topLeftCorner<3, 3>(), Eigen::ComputeFullU | Eigen::ComputeFullV);
  Eigen::Matrix3d r = svd.matrixU() * svd.matrixV().transpose();
  if (r.determinant() < 0) {
    Eigen::Matrix3d u = svd.matrixU();
    u.col(2) *= -1.0;
    r = u * svd.matrixV().transpose();
  }
  Eigen::Matrix4d out = m;
  out.topLeftCorner<3, 3>() = r;
  out.row(3) << 0, 0, 0, 1;
  return out;
}

double angle_deg(const Eigen::Vector3d& a, const Eigen::Vector3d& b) {
  const double c = a.normalized().dot(b.normalized());
  return std::acos(std::clamp(c, -1.0, 1.0)) * 180.0 / M_PI;
}

}  // namespace tmsplan
