#pragma once
/// Transform files that ITK and ANTs read: ITK affine text files and NIfTI displacement fields
/// (LPS on disk, RAS in the library). See docs/cortex-map.md.
#include <string>

#include <Eigen/Core>

#include "tmsplan/image.hpp"
#include "tmsplan/mni_map.hpp"

namespace tmsplan {

/// ITK transform files (`#Insight Transform File V1.0`, AffineTransform_double_3_3, LPS). `m` maps
/// RAS points to RAS points; what the file holds is its LPS form (ITK: fixed/output point ->
/// moving/input point).
void write_itk_affine(const std::string& path, const Eigen::Matrix4d& ras_to_ras, bool force);
/// Reads an AffineTransform / MatrixOffsetTransformBase (double or float, 3x3) with its centre.
Eigen::Matrix4d read_itk_affine(const std::string& path);
/// NIfTI displacement field as ITK and ANTs write it: 5D (x, y, z, 1, 3), float32, vectors in LPS
/// mm, intent 1007 (NIFTI_INTENT_VECTOR: ITK's own choice; ITK 5.2 misreads intent 1006, DISPVECT,
/// as a scalar image). `frame` is the xform code written. The reader takes 1006 or 1007.
void write_displacement_field(const std::string& path, const DisplacementField& field, Frame frame, bool force);
DisplacementField read_displacement_field(const std::string& path);

}  // namespace tmsplan
