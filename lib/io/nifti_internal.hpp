#pragma once
// Internal to lib/io: the format-specific readers behind read_image.
#include "tmsplan/image.hpp"

namespace tmsplan::detail {
Image read_nifti(const std::string& path, const ReadOptions& options, ImageInfo* info);
/// A uint8 NIfTI without scaling straight into a mask (voxels > 0.5, i.e. not 0), without a float
/// copy: the same mask as read_nifti and a threshold. False (nothing read) for any other datatype
/// or scaling.
bool read_nifti_uint8_mask(const std::string& path, Mask& mask);
Image read_dicom_series(const std::string& dir, const ReadOptions& options, ImageInfo* info);
void write_nifti(const std::string& path, const Grid& grid, const void* voxels, DiskType type,
                 const WriteOptions& options);
}  // namespace tmsplan::detail
