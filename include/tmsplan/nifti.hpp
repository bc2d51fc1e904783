#pragma once
/// NIfTI-1 vector images (5D: x, y, z, 1, components), as ITK and ANTs store displacement fields.
/// Read and written by the same code as the 3D images (lib/io/nifti.cpp: either byte order,
/// vox_offset and sizes checked before allocating); read_image / write_image serve 3D volumes.
#include <string>
#include <vector>

#include "tmsplan/image.hpp"

namespace tmsplan {

/// A volume of vectors, component-major as NIfTI stores them: data[c * grid.voxels() + voxel].
struct VectorVolume {
  Grid grid;
  int components = 0;
  int intent_code = 0;  ///< NIfTI intent (1006 DISPVECT, 1007 VECTOR, ...)
  int datatype = 16;    ///< the file's NIfTI datatype (read); float32 is written
  std::vector<float> data;
};

/// Reads a 5D NIfTI-1 (.nii or .nii.gz) with dims (x, y, z, 1, c); world geometry (sform, else
/// qform) required. Values scaled by scl_slope/scl_inter. Throws Error naming the file.
VectorVolume read_nifti_vectors(const std::string& path);
/// Writes one as float32 (vox_offset 352, qform = sform with `frame`'s code, `description` in
/// descrip). A path ending in .gz is gzip-compressed (level 1) as independent 8 MiB members in
/// parallel: a valid gzip file, the same bytes whatever the thread count. Atomic; refuses to
/// overwrite without `force`.
void write_nifti_vectors(const std::string& path, const VectorVolume& volume, Frame frame,
                         const std::string& description, bool force);

}  // namespace tmsplan
