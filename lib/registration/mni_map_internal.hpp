#pragma once
// Fast trilinear sampling of a displacement field (private to lib/registration).
#include "tmsplan/mni_map.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::registration_detail {

struct FieldSampler {
  const DisplacementField* field;
  Eigen::Matrix3d r2v;  // world -> voxel
  Eigen::Vector3d off;
  explicit FieldSampler(const DisplacementField& f);
  // Displacement at a fractional voxel position (zero outside the grid, edge-clamped within half a voxel).
  // Inline: the inverse's fixed-point iteration calls it several times per voxel.
  Eigen::Vector3d at_voxel(const Eigen::Vector3d& v) const {
    if (field->empty()) return Eigen::Vector3d::Zero();
    const Trilinear t = trilinear_stencil(field->grid.dim, v[0], v[1], v[2], Edge::Zero);
    if (!t.inside) return Eigen::Vector3d::Zero();
    Eigen::Vector3d out;
    for (int c = 0; c < 3; ++c) out[c] = trilinear_value(field->d[std::size_t(c)].data(), t);
    return out;
  }
  Eigen::Vector3d operator()(const Eigen::Vector3d& ras) const { return at_voxel(r2v * ras + off); }
};

}  // namespace tmsplan::registration_detail
