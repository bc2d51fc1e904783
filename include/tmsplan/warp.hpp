#pragma once
/// Deformable registration of a subject T1 to the MNI template (after register_affine) and the
/// resulting two-way point map MNI <-> subject RAS, saved as ITK/ANTs-readable transform files.
/// Plain C++/Eigen; deterministic whatever the thread count. See docs/cortex-map.md.
///
/// The map, in points (RAS mm; files hold the same in LPS, see docs/cortex-map.md):
///   to_subject(x) = A (x + u(x))          A: template -> subject affine, u on the template grid
///   to_mni(y)     = A^-1 (y + w(y))       w on the subject grid, w(y) = -A_lin u(to_mni(y))
/// which is what antsApplyTransforms does with `-t to_mni_warp.nii.gz -t to_mni_affine.txt`
/// (resampling the subject into MNI) and `-t from_mni_affine.txt -t from_mni_warp.nii.gz`
/// (resampling MNI images into the subject).
#include <array>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/registration.hpp"
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
  Image template_to_subject_image(const Image& mni_image, const Grid& subject_grid, Interp interp,
                                  float outside = 0.0f) const;
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

struct DeformableOptions {
  AffineOptions affine;  ///< first stage; template_focus is set from the template brain
  /// Pyramid levels (mm), coarse to fine, and iterations at each.
  std::vector<double> levels_mm{4.0, 2.0};
  std::vector<int> iterations{60, 40};
  /// Local NCC window radius in voxels of each level (2: a 5x5x5 window).
  int ncc_radius_vox = 2;
  /// Gaussian smoothing of each update ("fluid", voxels) and of the displacement ("diffusion").
  double sigma_update_vox = 1.732;
  double sigma_field_vox = 0.707;
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
  double crop_margin_mm = 8.0;
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
/// (local NCC, greedy compositive updates with fluid and diffusion smoothing, 4 -> 2 mm). The
/// forward field is returned on the template's grid, its inverse on the subject's grid. Throws
/// Error on masks off their image's grid, empty masks, or a failed affine stage.
DeformableResult register_deformable(const Image& subject, const Mask& subject_brain, const Image& templ,
                                     const Mask& template_brain, const DeformableOptions& options = {});

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

// ---------------------------------------------------------------------------------------------
// The cortex-map step (tools/cortex-map): registration, atlases in the subject, surfaces, maps.
namespace tmsplan::cortexmap {

inline constexpr const char* kTemplateDir = "/usr/share/mricron/templates";

struct Params {
  std::string t1;     ///< bias-corrected T1 (t1w_biascorr.nii.gz)
  std::string brain;  ///< brain_mask.nii.gz, on the T1 grid
  std::string head;   ///< head_mask.nii.gz, on the T1 grid
  std::string dseg;   ///< dseg.nii.gz (0/1 CSF/2 GM/3 WM); empty: intensity classes, with a warning
  std::string template_head = std::string(kTemplateDir) + "/ch2.nii.gz";
  std::string template_brain = std::string(kTemplateDir) + "/ch2bet.nii.gz";
  std::string atlas_dir = kTemplateDir;
  DeformableOptions registration;
};

/// One atlas carried into the subject.
struct SubjectAtlas {
  std::string key;          ///< "brodmann", "aal", "harvardoxford"
  std::string source;       ///< the MNI atlas file
  std::string restriction;  ///< "grey matter dilated by 1 voxel", "brain"
  Labels labels;
  std::map<int, std::string> names;  ///< labels present in the subject
};

/// The atlases of `atlas_dir` (brodmann, aal, HarvardOxford-cort-maxprob-thr0-1mm) resampled
/// nearest-neighbour onto `subject_grid` through `map`; brodmann and HarvardOxford restricted to
/// `gm` dilated by one voxel, aal to `brain`. Names from <atlas>.nii.txt where it exists
/// ("BA<n>" for brodmann, the number otherwise). Throws Error naming a missing atlas file.
std::vector<SubjectAtlas> warp_atlases(const MniMap& map, const Grid& subject_grid, const std::string& atlas_dir,
                                       const Mask& gm, const Mask& brain);

/// Output roles (OutputSet) that run() writes, with their contract file names (DESIGN.md 8).
std::vector<std::pair<std::string, std::string>> output_names();

/// Runs the whole step: reads and checks the inputs (one grid; a template with its brain),
/// registers, warps the atlases, makes surfaces and maps, writes every output of `out` (registered
/// with output_names() and checked by the caller) and fills the record's parameters and figures.
void run(const Params& params, const OutputSet& out, Record& record);

/// Maps one point: "mni" -> subject RAS or "ras" -> MNI, through the transforms in `subject_dir`.
nlohmann::json map_point(const std::string& subject_dir, const Eigen::Vector3d& point, bool from_mni);

}  // namespace tmsplan::cortexmap
