#pragma once
/// skull-strip's library side: bias-field correction, head (scalp) mask, brain mask.
#include <string>

#include "tmsplan/image.hpp"

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
  std::string template_head = "/usr/share/mricron/templates/ch2.nii.gz";
  std::string template_brain = "/usr/share/mricron/templates/ch2bet.nii.gz";
};

struct BrainResult {
  Mask brain;
  Mask head;
  Image corrected;                                                    ///< bias-corrected T1 (float)
  Eigen::Matrix4d subject_to_template = Eigen::Matrix4d::Identity();  ///< affine used for the prior
  double registration_similarity = 0.0;
};

/// The whole skull-strip step on one T1.
BrainResult skull_strip(const Image& t1, const std::string& source_name, const BrainOptions& options = {});

}  // namespace tmsplan
