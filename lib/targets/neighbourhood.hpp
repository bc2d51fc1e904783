#pragma once
// A target's neighbourhood as continuous fields (issue 16): what the picking rules weigh, sampled
// at points rather than read at voxel centres, so that the same head on another voxel lattice
// (another scan, a resampled copy, an anisotropic series) gives the same answer up to the masks'
// own differences.
#include <optional>
#include <vector>

#include "tmsplan/image.hpp"
#include "tmsplan/targets.hpp"

namespace tmsplan::targets {

class Neighbourhood {
 public:
  /// Fields within radius_mm of `centre`: the grey-matter indicator and the indicator of Brodmann
  /// area `area` (none when area <= 0 or the subject has no atlas), cropped from the subject's
  /// grid; the depth below the brain's outer hull, computed on a 1 mm grid along `axes` (the
  /// subject's anatomical axes) centred on `centre`, i.e. on a lattice that follows the anatomy.
  Neighbourhood(const Subject& subject, const Eigen::Vector3d& centre, const Eigen::Matrix3d& axes, double radius_mm,
                int area);

  /// Trilinear grey matter at p, 0..1, its 0.5 level a sub-voxel GM boundary: segment's grey-matter
  /// fraction (probseg_gm) when the subject has one, else the indicator of dseg == 2.
  double gm(const Eigen::Vector3d& p) const;
  /// Trilinear indicator of the Brodmann area at p (0..1); 1 everywhere when no area was asked.
  double area(const Eigen::Vector3d& p) const;
  /// Depth below the brain's outer hull (closing with a 12 mm ball, holes filled), mm, trilinear.
  double depth(const Eigen::Vector3d& p) const;
  /// Points of a step_mm lattice along the anatomical axes centred on `centre`, within radius_mm.
  std::vector<Eigen::Vector3d> lattice(double radius_mm, double step_mm) const;
  /// The point of the grey matter crossed by the line through p along `outward` nearest to p, at
  /// least 0.5 mm inside it (the GM run holding p, else the nearest outward within 2 mm, else the
  /// nearest inward; the middle of a run thinner than 1 mm): p itself when it lies that deep in grey matter.
  /// nullopt when the line meets none within 2 mm.
  std::optional<Eigen::Vector3d> onto_cortex(const Eigen::Vector3d& p, const Eigen::Vector3d& outward) const;

 private:
  Eigen::Vector3d centre_;
  Eigen::Matrix3d axes_;
  Image gm_, area_;  // crops of the subject grid (float indicators)
  Image depth_;      // on the anatomical 1 mm grid
  Eigen::Matrix4d crop_ras2vox_, depth_ras2vox_;
  bool has_area_ = false;
};

}  // namespace tmsplan::targets
