#pragma once
/// The two-way point map between the MNI template and a subject (affine + displacement fields) and
/// the displacement field itself. Plain C++/Eigen. See docs/cortex-map.md.
///
/// The map, in points (RAS mm; files hold the same in LPS, see docs/cortex-map.md):
///   to_subject(x) = A (x + u(x))          A: template -> subject affine, u on the template grid
///   to_mni(y)     = A^-1 (y + w(y))       w on the subject grid, w(y) = -A_lin u(to_mni(y))
/// which is what antsApplyTransforms does with `-t to_mni_warp.nii.gz -t to_mni_affine.txt`
/// (resampling the subject into MNI) and `-t from_mni_affine.txt -t from_mni_warp.nii.gz`
/// (resampling MNI images into the subject).
#include <array>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "tmsplan/image.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {

/// A displacement field on a grid: per voxel a vector in RAS mm (three planar components).
/// Outside the grid the displacement is zero; inside it is trilinear (edge-clamped within half a
/// voxel of the border, as `sample`).
struct DisplacementField {
  Grid grid;
  std::array<std::vector<float>, 3> d;  ///< x, y, z components (RAS mm), grid.voxels() each

  DisplacementField() = default;
  explicit DisplacementField(const Grid& g);
  bool empty() const { return d[0].empty(); }
  Eigen::Vector3d at_voxel(std::size_t index) const { return {d[0][index], d[1][index], d[2][index]}; }
  /// Trilinear displacement at a world point (zero outside the grid).
  Eigen::Vector3d at(const Eigen::Vector3d& ras) const;
  /// Largest vector length (mm).
  double max_norm_mm() const;
};

/// The two-way map between the template (MNI mm) and a subject (RAS mm).
class MniMap {
 public:
  MniMap() = default;
  /// `template_to_subject`: the affine A; `to_mni_warp`: u on the template grid; `from_mni_warp`:
  /// w on the subject grid (either may be empty: affine only in that direction).
  MniMap(const Eigen::Matrix4d& template_to_subject, DisplacementField to_mni_warp, DisplacementField from_mni_warp);

  /// MNI mm -> subject RAS mm.
  Eigen::Vector3d to_subject(const Eigen::Vector3d& mni) const;
  /// Subject RAS mm -> MNI mm.
  Eigen::Vector3d to_mni(const Eigen::Vector3d& subject_ras) const;

  /// Resamples a template-space image onto `subject_grid` (e.g. an atlas, nearest neighbour).
  /// With `only` (a mask on `subject_grid`), voxels outside it are not sampled: they get `outside`.
  Image template_to_subject_image(const Image& mni_image, const Grid& subject_grid, Interp interp, float outside = 0.0f,
                                  const Mask* only = nullptr) const;
  /// Resamples a subject image onto `template_grid`.
  Image subject_to_template_image(const Image& subject_image, const Grid& template_grid, Interp interp,
                                  float outside = 0.0f) const;

  const Eigen::Matrix4d& template_to_subject_affine() const { return a_; }
  Eigen::Matrix4d subject_to_template_affine() const { return a_inv_; }
  const DisplacementField& to_mni_warp() const { return u_; }
  const DisplacementField& from_mni_warp() const { return w_; }

  /// File names in a subject folder (DESIGN.md 8).
  static constexpr const char* kToMniAffine = "to_mni_affine.txt";
  static constexpr const char* kToMniWarp = "to_mni_warp.nii.gz";
  static constexpr const char* kFromMniAffine = "from_mni_affine.txt";
  static constexpr const char* kFromMniWarp = "from_mni_warp.nii.gz";
  /// Writes the four files into `dir` (atomically; refuses to overwrite without force).
  void save(const std::string& dir, bool force) const;
  /// Reads them back (all four must exist; the two affines must be inverse to each other).
  static MniMap load(const std::string& dir);

 private:
  Eigen::Matrix4d a_ = Eigen::Matrix4d::Identity();
  Eigen::Matrix4d a_inv_ = Eigen::Matrix4d::Identity();
  DisplacementField u_, w_;
};

/// The inverse displacement field on `subject_grid` for a forward map x -> A (x + u(x)), by
/// fixed-point iteration per voxel (w(y) = -A_lin u(x), x solving A (x + u(x)) = y).
DisplacementField invert_to_subject_grid(const Eigen::Matrix4d& template_to_subject, const DisplacementField& u,
                                         const Grid& subject_grid);

}  // namespace tmsplan
