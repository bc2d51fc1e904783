#pragma once
/// Deformable registration of a subject T1 to the MNI template (after register_affine), giving the
/// two-way MniMap. Deterministic whatever the thread count. See docs/cortex-map.md.
#include <vector>

#include "tmsplan/image.hpp"
#include "tmsplan/mni_map.hpp"
#include "tmsplan/registration.hpp"

namespace tmsplan {

struct DeformableOptions {
  /// First stage; template_focus is set from the template brain. It stops at 9 parameters (no
  /// shear): a 12-parameter start fits part of a head's non-linear shape as shear, and the
  /// deformable stage then settles where that start leads. On five warped copies of a head that is
  /// not the template, consistency 1.017 -> 0.829 mm (mean), largest error 7.30 -> 5.41 mm; Colin27
  /// pir-warp5 known answer 0.273 / 1.209 -> 0.240 / 0.789 mm (docs/cortex-map.md).
  AffineOptions affine = [] {
    AffineOptions a;
    a.shear = false;
    return a;
  }();
  /// Pyramid levels (mm), coarse to fine, and iterations at each. The 1 mm level (issue 16, eighth
  /// session) lets the map follow the folding the 2 mm level cannot (a 5 mm NCC window); with
  /// min_sigma_update_mm its updates stay as smooth as the 2 mm level's (docs/cortex-map.md).
  std::vector<double> levels_mm{4.0, 2.0, 1.0};
  std::vector<int> iterations{60, 40, 10};
  /// Local NCC window radius in voxels of each level (2: a 5x5x5 window).
  int ncc_radius_vox = 2;
  /// Gaussian smoothing of each update ("fluid", voxels) and of the displacement ("diffusion").
  double sigma_update_vox = 1.732;
  double sigma_field_vox = 0.707;
  /// The fluid smoothing is never narrower than this (mm): 3.464 mm is the 2 mm level's 1.732
  /// voxels, so the 1 mm level refines where the updates point, not how finely they vary. Without
  /// it (1.7 mm at 1 mm) the known-answer copies lose (pir-warp5 mean 0.245 -> 0.256 mm, min
  /// Jacobian 0.79 -> 0.54); with it they gain (0.207 mm, 0.73).
  double min_sigma_update_mm = 3.464;
  /// Largest displacement of one update, in voxels of the level.
  double step_vox = 0.25;
  /// The fit sees both images only inside the template brain grown by this margin (the same region
  /// for both, so its edge drives nothing): the brain's outer surface counts, scalp does not.
  double mask_margin_mm = 4.0;
  /// The subject image is first cut to its own brain mask grown by this much (removes neck, face
  /// and scalp far from the brain; wide, so that where the subject's mask stops does not show
  /// inside the template region).
  double subject_margin_mm = 12.0;
  /// The level grids cover the template region grown by this margin, not the whole template field
  /// (beyond them the field continues with its edge value, then fades at the template's border).
  /// 4 mm gives the known-answer figures of 8 mm on asl-warp and pir-warp5 (docs/cortex-map.md)
  /// on about 14% fewer level voxels.
  double crop_margin_mm = 4.0;
  /// Mask channel: the subject's brain mask (warped) against the template's, both blurred to
  /// mask_sigma_vox voxels of each level, a squared-difference force added to the NCC force. The
  /// weight reads: a full mask-edge mismatch pushes as hard as the 99th percentile of the level's
  /// first NCC force. 0 turns the channel off (NCC alone: mask edges drive nothing).
  double mask_weight = 0.0;
  double mask_sigma_vox = 1.0;
  /// The template mask the channel matches the subject's against (on the template's grid); null:
  /// the template brain. It should follow the subject mask's definition (e.g. skull-strip run on the
  /// template), or the channel pulls the cortex by the difference between the two definitions.
  const Mask* mask_channel_template = nullptr;
};

struct DeformableResult {
  MniMap map;
  AffineResult affine;
  /// NCC over the template brain (at the finest level) between the template and the subject as
  /// its header places it, after the affine, and after the deformable stage.
  double ncc_identity = 0.0, ncc_affine = 0.0, ncc_deformable = 0.0;
  /// Smallest Jacobian determinant of x -> x + u(x) on the finest level grid inside the template
  /// brain (> 0: no folding).
  double min_jacobian = 0.0;
  double max_displacement_mm = 0.0;
  double seconds_affine = 0.0, seconds_deformable = 0.0, seconds_inverse = 0.0;
};

/// Registers `subject` (bias-corrected T1, any grid) with its brain mask to `templ` (template head)
/// with its brain mask: affine (brain focus), then the deformable stage on brain-masked images
/// (local NCC, greedy compositive updates with fluid and diffusion smoothing, 4 -> 2 -> 1 mm). The
/// forward field is returned on the template's grid, its inverse on the subject's grid. Throws
/// Error on masks off their image's grid, empty masks, or a failed affine stage.
DeformableResult register_deformable(const Image& subject, const Mask& subject_brain, const Image& templ,
                                     const Mask& template_brain, const DeformableOptions& options = {});

}  // namespace tmsplan
