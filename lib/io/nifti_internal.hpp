#pragma once
// Internal to lib/io: the format-specific readers behind read_image.
#include "tmsplan/image.hpp"

namespace tmsplan::detail {
Image read_nifti(const std::string& path, const ReadOptions& options, ImageInfo* info);
Image read_dicom_series(const std::string& dir, const ReadOptions& options, ImageInfo* info);
void write_nifti(const std::string& path, const Grid& grid, const void* voxels, DiskType type,
                 const WriteOptions& options);
}  // namespace tmsplan::detail
