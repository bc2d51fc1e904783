#pragma once
// Internal to lib/: the NIfTI-1 header layout and its qform, shared by the image reader/writer
// (lib/io/nifti.cpp) and the displacement-field files (lib/registration/transform_io.cpp).
#include <zlib.h>

#include <Eigen/Geometry>
#include <cstdint>
#include <memory>

namespace tmsplan::detail {

#pragma pack(push, 1)
struct Nifti1Header {
  std::int32_t sizeof_hdr;
  char data_type[10];
  char db_name[18];
  std::int32_t extents;
  std::int16_t session_error;
  char regular;
  char dim_info;
  std::int16_t dim[8];
  float intent_p1, intent_p2, intent_p3;
  std::int16_t intent_code;
  std::int16_t datatype;
  std::int16_t bitpix;
  std::int16_t slice_start;
  float pixdim[8];
  float vox_offset;
  float scl_slope;
  float scl_inter;
  std::int16_t slice_end;
  char slice_code;
  char xyzt_units;
  float cal_max, cal_min;
  float slice_duration;
  float toffset;
  std::int32_t glmax, glmin;
  char descrip[80];
  char aux_file[24];
  std::int16_t qform_code;
  std::int16_t sform_code;
  float quatern_b, quatern_c, quatern_d;
  float qoffset_x, qoffset_y, qoffset_z;
  float srow_x[4];
  float srow_y[4];
  float srow_z[4];
  char intent_name[16];
  char magic[4];
};
#pragma pack(pop)
static_assert(sizeof(Nifti1Header) == 348, "NIfTI-1 header must be 348 bytes");

struct GzCloser {
  void operator()(gzFile_s* f) const {
    if (f) gzclose(f);
  }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

/// The qform as a voxel -> world matrix (NIfTI-1 standard, method 2).
Eigen::Matrix4d qform_matrix(const Nifti1Header& h);
/// The qform's parts of a voxel -> world 3x3 in double precision: unit quaternion (w >= 0) of the
/// nearest rotation, qfac (-1 for a left-handed grid) and the column lengths (voxel spacing).
struct QformRotation {
  Eigen::Quaterniond q = Eigen::Quaterniond::Identity();
  double qfac = 1.0;
  Eigen::Vector3d spacing = Eigen::Vector3d::Ones();
};
QformRotation qform_rotation(const Eigen::Matrix3d& a);
/// Sets quatern_b/c/d, qfac (pixdim[0]) and pixdim[1..3] from a voxel -> world 3x3 (nearest rotation).
void quaternion_from(const Eigen::Matrix3d& a, Nifti1Header& h);
/// Writes one voxel -> world matrix as both qform and sform (same code), as every output has.
void set_xforms(const Eigen::Matrix4d& vox2world, std::int16_t code, Nifti1Header& h);

}  // namespace tmsplan::detail
