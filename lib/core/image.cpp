// The methods of the voxel grid (include/tmsplan/image.hpp); reading and writing images is in
// lib/io/image.cpp.
#include "tmsplan/image.hpp"

#include <cmath>

namespace tmsplan {

Eigen::Vector3d Grid::spacing_mm() const {
  const Eigen::Matrix3d a = vox2ras.m.topLeftCorner<3, 3>();
  return {a.col(0).norm(), a.col(1).norm(), a.col(2).norm()};
}

double Grid::voxel_volume_ml() const { return std::abs(vox2ras.m.topLeftCorner<3, 3>().determinant()) / 1000.0; }

bool Grid::same_as(const Grid& other, double tol_mm) const {
  if (dim != other.dim) return false;
  // The difference of two affine maps is largest at a corner of the grid.
  const Eigen::Matrix4d diff = vox2ras.m - other.vox2ras.m;
  for (int corner = 0; corner < 8; ++corner) {
    const Eigen::Vector4d ijk((corner & 1) ? double(dim[0] - 1) : 0.0, (corner & 2) ? double(dim[1] - 1) : 0.0,
                              (corner & 4) ? double(dim[2] - 1) : 0.0, 1.0);
    if ((diff * ijk).head<3>().norm() > tol_mm) return false;
  }
  return true;
}

}  // namespace tmsplan
