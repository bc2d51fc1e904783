#pragma once
// Fast trilinear sampling of a displacement field (private to lib/registration).
#include "tmsplan/mni_map.hpp"

namespace tmsplan::registration_detail {

struct FieldSampler {
  const DisplacementField* field;
  Eigen::Matrix3d r2v;  // world -> voxel
  Eigen::Vector3d off;
  explicit FieldSampler(const DisplacementField& f);
  // Displacement at a fractional voxel position (zero outside the grid, edge-clamped within half a voxel).
  Eigen::Vector3d at_voxel(const Eigen::Vector3d& v) const;
  Eigen::Vector3d operator()(const Eigen::Vector3d& ras) const { return at_voxel(r2v * ras + off); }
};

}  // namespace tmsplan::registration_detail
