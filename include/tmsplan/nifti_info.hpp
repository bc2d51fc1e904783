#pragma once
/// What a NIfTI-1 header written by write_image says about a grid, for formats that repeat it
/// (the ANT Neuro marker file copies the qform fields). Defined in lib/io/nifti_info.cpp.
#include <Eigen/Core>

namespace tmsplan {

/// The qform of a voxel -> world 3x3 as write_image stores it: quatern_b/c/d of the nearest
/// rotation (unit quaternion, w >= 0), qfac (pixdim[0]: -1 for a left-handed grid) and the voxel
/// spacing (pixdim[1..3]).
struct NiftiQform {
  Eigen::Vector3d quatern{0, 0, 0};
  double qfac = 1.0;
  Eigen::Vector3d spacing{1, 1, 1};
};
NiftiQform nifti_qform(const Eigen::Matrix3d& vox2world);

}  // namespace tmsplan
