#pragma once
/// Affine registration of a subject head (T1, any orientation and voxel size) to the MNI template
/// head (Colin27 ch2.nii.gz). Plain C++/Eigen; see docs/registration.md for the method and the
/// measured accuracy. Deterministic: the same input gives the same matrices whatever the thread count.
#include <vector>

#include <Eigen/Core>

#include "tmsplan/image.hpp"

namespace tmsplan {

struct AffineOptions {
  /// Pyramid levels, coarse to fine: sample spacing in mm of the smoothed, downsampled copies.
  std::vector<double> levels_mm{8.0, 4.0, 2.0};
  /// Levenberg-Marquardt iterations allowed per level and stage (rigid, affine).
  int max_iterations_per_level = 40;
  /// Stop at 6 parameters (rotation + translation); otherwise finish with 9 or all 12.
  bool rigid_only = false;
  /// With rigid_only false: fit shear too (all 12 parameters), or stop at 9 (rotation,
  /// translation and a scale along each template axis: the head's size and proportions).
  bool shear = true;
  /// Try a grid of head tilts (pitch +-24, roll and yaw +-12 degrees) at the coarsest level before
  /// the local optimisation; turn off only for inputs known to be nearly aligned.
  bool search_rotations = true;
  /// Optional region of the template (on templ's grid, not owned), e.g. Colin27's brain
  /// (ch2bet > 0): the finest level samples only it plus an 8 mm margin, so the fit favours the
  /// brain over scalp, face and neck. Coarser levels always use the whole head.
  const Mask* template_focus = nullptr;
};

struct AffineResult {
  /// Maps a subject point (world RAS mm) to the same anatomy in the template (MNI mm).
  Eigen::Matrix4d subject_to_template = Eigen::Matrix4d::Identity();
  /// Its inverse: a template point (MNI mm) to the subject's RAS mm.
  Eigen::Matrix4d template_to_subject = Eigen::Matrix4d::Identity();
  /// Normalised cross-correlation (-1..1) between the template and the subject resampled onto the
  /// template's sample points at the finest level (the head plus 12 mm, or the focus plus 8 mm):
  /// before = the images as their headers place them (identity), after = with the result.
  double similarity_before = 0.0;
  double similarity_after = 0.0;
  /// Levenberg-Marquardt iterations over all levels and stages.
  int iterations = 0;
};

/// Registers `subject` to `templ` (both head T1 images; intensities in any units). Throws Error
/// when either image has no head signal (constant, empty, or noise without background) or the
/// result is implausible (final NCC below 0.25, a scale outside 0.5..2, or a reflection).
AffineResult register_affine(const Image& subject, const Image& templ, const AffineOptions& options = {});

/// Maps a point through a 4x4 affine (RAS mm -> RAS mm).
Eigen::Vector3d apply_affine(const Eigen::Matrix4d& m, const Eigen::Vector3d& p);

}  // namespace tmsplan
