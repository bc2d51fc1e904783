#pragma once
/// skull-strip's library side: bias-field correction, head (scalp) mask, brain mask, and the
/// whole step (brain::run) that tools/skull-strip calls.
#include <string>
#include <utility>
#include <vector>

#include "tmsplan/data.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/working_grid.hpp"

namespace tmsplan {

struct BiasOptions {
  double working_mm = 5.0;     ///< field estimated on a grid of this spacing
  double smoothing_mm = 30.0;  ///< the field is smooth on this scale (Gaussian sigma)
  int iterations = 30;
  double fwhm = 0.15;  ///< N3's assumed blur of the log-intensity histogram
};

/// N3-style multiplicative field (Sled 1998): sharpens the log-intensity histogram inside `mask`
/// and returns the smooth field on the image grid (divide the image by it to correct).
Image estimate_bias_field(const Image& t1, const Mask& mask, const BiasOptions& options = {});

/// Everything inside the scalp: background noise and ghosting excluded, internal cavities filled.
/// Refuses images that do not look like a head (no clear foreground, or a tiny/huge one).
Mask head_mask(const Image& t1, const std::string& source_name);

struct BrainOptions {
  std::string template_head = kMniTemplateHead;
  std::string template_brain = kMniTemplateBrain;
};

struct BrainResult {
  Mask brain;
  Mask head;
  Image corrected;   ///< bias-corrected T1 (float)
  Image bias_field;  ///< the product of both estimated fields (corrected = t1 / bias_field, up to rounding)
  Eigen::Matrix4d subject_to_template = Eigen::Matrix4d::Identity();  ///< affine used for the prior
  double registration_similarity = 0.0;
};

/// The whole skull-strip step on one T1, on the T1's own grid.
BrainResult skull_strip(const Image& t1, const std::string& source_name, const BrainOptions& options = {});

}  // namespace tmsplan

namespace tmsplan::brain {

/// More brain mask than this on the image's faces (volume_on_faces_ml) means the field of view cuts
/// through the brain: skull-strip warns and records it, target-pick warns on every target (a Philips
/// copy cut 15 mm below the brain's top moved the registration: DLPFC_BA46 2.3 mm).
inline constexpr double kBrainCutMl = 0.5;

struct Params {
  std::string t1;      ///< NIfTI file or DICOM series folder
  std::string series;  ///< DICOM series instance UID, when the folder holds several
  BrainOptions options;
  /// skull_strip runs on workgrid::choose(t1 grid, this); 0: always on the T1's own grid.
  double working_spacing_mm = workgrid::kSpacingMm;
};

/// Output roles (OutputSet) that run() writes, with their contract file names (DESIGN.md 8).
std::vector<std::pair<std::string, std::string>> output_names();

/// The skull-strip step: reads the T1, runs skull_strip on the working grid (the T1's own grid
/// when it is about 1 mm), brings the masks and the bias field back to the T1's grid, writes
/// every output of `out` (registered with output_names() and checked by the caller) except the
/// record, and fills the record's inputs, parameters, figures and outputs.
void run(const Params& params, const OutputSet& out, Record& record);

}  // namespace tmsplan::brain
