#pragma once
/// Coordinates. The one module that knows about RAS (what users see), LPS (what ITK and DICOM
/// use) and voxel indices. Each frame has its own type so they cannot be mixed by accident.
/// Conversions between RAS and LPS flip x and y: points and directions by D = diag(-1,-1,1),
/// 4x4 matrices by D4 * M * D4 with D4 = diag(-1,-1,1,1).
#include <Eigen/Core>
#include <Eigen/Geometry>

namespace tmsplan {

/// A point in world RAS+ millimetres (the NIfTI frame of a T1, or MNI when a field says so).
struct RasPoint {
  Eigen::Vector3d v{0, 0, 0};
  RasPoint() = default;
  RasPoint(double x, double y, double z) : v(x, y, z) {}
  explicit RasPoint(const Eigen::Vector3d& p) : v(p) {}
};

/// A point in world LPS+ millimetres (ITK, DICOM patient coordinates).
struct LpsPoint {
  Eigen::Vector3d v{0, 0, 0};
  LpsPoint() = default;
  LpsPoint(double x, double y, double z) : v(x, y, z) {}
  explicit LpsPoint(const Eigen::Vector3d& p) : v(p) {}
};

/// A (possibly fractional) 0-based voxel index i, j, k.
struct VoxelIndex {
  Eigen::Vector3d v{0, 0, 0};
  VoxelIndex() = default;
  VoxelIndex(double i, double j, double k) : v(i, j, k) {}
  explicit VoxelIndex(const Eigen::Vector3d& p) : v(p) {}
};

/// A direction (unit or not) in RAS.
struct RasVector {
  Eigen::Vector3d v{0, 0, 0};
  RasVector() = default;
  RasVector(double x, double y, double z) : v(x, y, z) {}
  explicit RasVector(const Eigen::Vector3d& p) : v(p) {}
};

/// A direction in LPS.
struct LpsVector {
  Eigen::Vector3d v{0, 0, 0};
  LpsVector() = default;
  LpsVector(double x, double y, double z) : v(x, y, z) {}
  explicit LpsVector(const Eigen::Vector3d& p) : v(p) {}
};

/// A 4x4 homogeneous matrix whose output frame is RAS (e.g. voxel->RAS, or a coil pose in RAS).
struct RasMatrix {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  RasMatrix() = default;
  explicit RasMatrix(const Eigen::Matrix4d& a) : m(a) {}
};

/// A 4x4 homogeneous matrix whose output frame is LPS.
struct LpsMatrix {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  LpsMatrix() = default;
  explicit LpsMatrix(const Eigen::Matrix4d& a) : m(a) {}
};

LpsPoint to_lps(const RasPoint& p);
RasPoint to_ras(const LpsPoint& p);
LpsVector to_lps(const RasVector& d);
RasVector to_ras(const LpsVector& d);
/// D4 * M * D4: a matrix mapping RAS->RAS (pose, transform) becomes LPS->LPS and back.
LpsMatrix to_lps(const RasMatrix& m);
RasMatrix to_ras(const LpsMatrix& m);
/// For voxel->world matrices only the output side flips: D4 * M.
LpsMatrix vox2lps_from_vox2ras(const RasMatrix& vox2ras);
RasMatrix vox2ras_from_vox2lps(const LpsMatrix& vox2lps);

/// Voxel index <-> RAS through a voxel->RAS matrix.
RasPoint voxel_to_ras(const RasMatrix& vox2ras, const VoxelIndex& ijk);
VoxelIndex ras_to_voxel(const RasMatrix& vox2ras, const RasPoint& p);
RasVector apply_direction(const RasMatrix& m, const RasVector& d);
RasPoint apply(const RasMatrix& m, const RasPoint& p);

/// A coil pose: columns are the coil's x, y, z axes in RAS, then its centre (SimNIBS convention:
/// z into the head, y along the handle axis, x = y cross z).
using Pose = RasMatrix;

/// A pose (coil-local -> world) changes world frame on its output side only: D4 * M. Its axes
/// are vectors in the new frame; the coil's own frame does not change.
LpsMatrix pose_to_lps(const Pose& pose);
Pose pose_from_lps(const LpsMatrix& pose);

/// Nearest orthonormal, right-handed rotation to the 3x3 part (polar decomposition via SVD);
/// the translation is kept. Navigators warp coils over matrices with a little shear.
Eigen::Matrix4d orthonormalize(const Eigen::Matrix4d& m);

/// Angle in degrees between two directions.
double angle_deg(const Eigen::Vector3d& a, const Eigen::Vector3d& b);

}  // namespace tmsplan
