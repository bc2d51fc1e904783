// skull-strip: head mask, bias correction, template prior by affine registration, then the
// brain boundary refined on the subject's own intensities.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tmsplan/provenance.hpp"

#include "levels.hpp"
#include "tmsplan/brain.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/progress.hpp"
#include "tmsplan/registration.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {
namespace {

// The brain boundary's threshold was validated (Dice vs HD-BET) on the Philips MPRAGE, whose noise
// is 0.067 of its GM-CSF contrast by noise_sigma(); noisier scans are smoothed down to 0.075.
constexpr double kBrainNoise = 0.075;

Image divide(const Image& image, const Image& field) {
  Image out(image.grid, 0.0f);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = image.data[i] / std::max(1e-3f, field.data[i]);
  return out;
}

// Noise of `image` in `core`: each voxel against the mean of its six neighbours, the median of
// the absolute residuals scaled to a Gaussian's sigma (for white noise var = 7/6 sigma^2).
double noise_sigma(const Image& image, const Mask& core) {
  const auto& d = image.grid.dim;
  std::vector<float> r;
  for (std::int64_t k = 1; k + 1 < d[2]; ++k)
    for (std::int64_t j = 1; j + 1 < d[1]; ++j)
      for (std::int64_t i = 1; i + 1 < d[0]; ++i) {
        if (!core(i, j, k)) continue;
        const double mean6 = (image(i - 1, j, k) + image(i + 1, j, k) + image(i, j - 1, k) + image(i, j + 1, k) +
                              image(i, j, k - 1) + image(i, j, k + 1)) /
                             6.0;
        r.push_back(float(std::abs(image(i, j, k) - mean6)));
      }
  if (r.empty()) return 0.0;
  return 1.4826 * double(quantile(std::move(r), 0.5)) / std::sqrt(7.0 / 6.0);
}

// The Gaussian (mm) that brings white noise of `noise` (as a fraction of the GM-CSF contrast) down
// to kBrainNoise: the smallest sigma whose kernel's noise gain (sum of w^2)^(3/2) is low enough,
// on a 0.05 voxel ladder up to 1.5 voxels; 0 when the noise is already that low.
double denoising_sigma_mm(double noise, double voxel_mm) {
  if (noise <= kBrainNoise) return 0.0;
  for (double s = 0.3; s <= 1.5 + 1e-9; s += 0.05) {
    double sum2 = 0.0;
    for (double w : gaussian_kernel(s)) sum2 += w * w;
    if (noise * std::pow(sum2, 1.5) <= kBrainNoise) return s * voxel_mm;
  }
  return 1.5 * voxel_mm;
}

// Brain tissue near the prior, detached from dura/scalp by an opening, grown back, closed over
// sulcal CSF, holes filled, held within a band around the prior, then grown over the outer CSF.
Mask extract_brain(const Image& corrected, const Mask& prior, const Mask& head, const std::string& source_name) {
  // The prior's erosions and dilations, each set of radii from one distance transform.
  const std::vector<Mask> eroded = erode(prior, {6.0, 7.0, 12.0}), dilated = dilate(prior, {5.0, 8.0});
  const Mask &core = eroded[0], &deep = eroded[1], &seed = eroded[2], &band = dilated[0], &near = dilated[1];
  std::vector<float> core_values;
  for (std::size_t i = 0; i < corrected.data.size(); ++i)
    if (core.data[i]) core_values.push_back(corrected.data[i]);
  // Pure-tissue levels, not class means: the threshold must not move with partial volume
  // (slice thickness), see levels.cpp.
  const auto means = brain::tissue_levels(core_values).pure;
  const double csf_gm = 0.5 * (means[0] + means[1]);
  log::debug(fmt::format("tissue levels CSF {:.4g} GM {:.4g} WM {:.4g}", means[0], means[1], means[2]));

  // A noisy scan is smoothed first, just enough to bring its noise down to the level the threshold
  // was validated at (docs/skull-strip.md): noise left a ragged edge that the opening shaved.
  const double noise = noise_sigma(corrected, core) / std::max(1e-9, means[1] - means[0]);
  const double sigma_mm = denoising_sigma_mm(noise, corrected.grid.spacing_mm().minCoeff());
  log::debug(fmt::format("noise {:.3f} of the GM-CSF contrast: threshold after smoothing {:.2f} mm", noise, sigma_mm));
  const Image levels = sigma_mm > 0.0 ? gaussian_smooth(corrected, sigma_mm) : corrected;
  Mask tissue = mask_and(threshold(levels, static_cast<float>(csf_gm)), near);
  const double too_bright = means[2] + 3.0 * (means[2] - means[1]);
  for (std::size_t i = 0; i < tissue.data.size(); ++i)
    if (corrected.data[i] > too_bright) tissue.data[i] = 0;
  Mask brain = components_touching(open(tissue, 2.0), seed);
  brain = close(brain, 5.0);
  brain = fill_holes(brain);
  brain = mask_and(brain, band);
  brain = largest_component(open(brain, 1.0));
  // The deep interior of the prior is brain whatever its intensity (ventricles and cisterns,
  // which open to the outer CSF and so are not holes).
  brain = mask_or(brain, deep);
  brain = fill_holes(brain);
  // The outer surface of the brain includes the subarachnoid CSF up to the dura (as HD-BET and
  // manual tracings do): grow 2 mm into dark voxels, never into bright fat or marrow.
  const Mask grown = dilate(brain, 2.0);
  const float bright = static_cast<float>(0.5 * (means[1] + means[2]));
  for (std::size_t i = 0; i < grown.data.size(); ++i)
    if (grown.data[i] && !brain.data[i] && head.data[i] && corrected.data[i] < bright) brain.data[i] = 1;
  if (volume_ml(brain) < 500.0) throw Error("brain mask came out implausibly small", source_name);
  return brain;
}

// A T1 skull-stripped before it reached us has no scalp: its "head" ends at the brain, and no
// coil can be placed on it. A whole head's skin lies more than 5 mm outside the brain nearly
// everywhere: the share of the head's surface voxels within 5 mm of the brain mask is <= 0.014 on
// Philips, Colin27, their 0.4x0.4x1.5 mm copies and a defaced copy; 0.57 and 0.62 on the stripped
// Colin27 brains (ch2bet, ch2better) of mricron-data (docs/skull-strip.md).
constexpr double kStrippedShare = 0.25;
// When the registration to the template head fails, a "head" this small is a stripped brain (1,458
// ml for the Philips head stripped by HD-BET; 1,750 for ch2bet; the whole heads measured are 3,500
// ml and more, the 0.4x0.4x1.5 mm copy's smaller field of view included).
constexpr double kStrippedHeadMl = 2100.0;

// `brain_box` is the brain on `box`, the brain stage's crop: the brain lies within 7 mm of the
// prior and the box reaches 20 mm beyond it, so every voxel within 5 mm of the brain is in the box.
// The dilation runs there; the head's surface is counted over the whole grid.
void refuse_stripped_input(const Mask& head, const Mask& brain_box, const Crop& box, const std::string& source_name) {
  const Mask surface = outer_layer(head, head.grid.spacing_mm().minCoeff());
  const std::size_t n = count(surface), close = count(mask_and(crop(surface, box), dilate(brain_box, 5.0)));
  const double share = n > 0 ? double(close) / double(n) : 1.0;
  log::debug(fmt::format("head surface within 5 mm of the brain: {:.3f}", share));
  if (share > kStrippedShare)
    throw Error(fmt::format("the T1 looks skull-stripped: {:.0f} % of the head's surface lies within 5 mm of the "
                            "brain (a whole head: about 1 %); planning needs the whole head, scalp included",
                            100.0 * share),
                source_name);
}

}  // namespace

BrainResult skull_strip(const Image& t1, const std::string& source_name, const BrainOptions& options) {
  BrainResult r;
  Progress progress("skull-strip", 6);
  const double t_start = now_seconds();
  r.head = head_mask(t1, source_name);
  ++progress;
  log::debug(fmt::format("  {:.1f} s", now_seconds() - t_start));

  // Bias field over the head first (good enough to register and to find tissue classes).
  const Image field_head = estimate_bias_field(t1, r.head);
  Image corrected = divide(t1, field_head);
  // The head again on the corrected image: a receive-coil bias moved the skin edge by up to
  // ~0.5 mm between the left and right of a copy with 30 % bias (docs/skull-strip.md).
  r.head = head_mask(corrected, source_name);
  ++progress;
  log::debug(fmt::format("  {:.1f} s", now_seconds() - t_start));

  const Image templ = read_image(options.template_head);
  ReadOptions mask_read;
  mask_read.refuse_constant = false;
  const Image templ_brain_image = read_image(options.template_brain, mask_read);
  if (!templ_brain_image.grid.same_as(templ.grid, 1e-2))
    throw Error("template brain is not on the template head's grid", options.template_brain);
  const Mask templ_brain = largest_component(threshold(templ_brain_image, 0.0f));
  if (volume_ml(templ_brain) < 500.0)
    throw Error("template has no brain (fewer than 500 ml above 0)", options.template_brain);

  AffineOptions reg_options;
  reg_options.template_focus = &templ_brain;  // fit the brain, not face and neck (docs/registration.md)
  AffineResult reg;
  try {
    reg = register_affine(corrected, templ, reg_options);
  } catch (const Error&) {
    // A stripped brain's scale does not fit the template head's: say what the input is.
    const double ml = volume_ml(r.head);
    if (ml < kStrippedHeadMl)
      throw Error(fmt::format("the T1 looks skull-stripped: the head in it is {:.0f} ml, a brain's size (a whole head "
                              "with skull and scalp: over {:.0f} ml); planning needs the whole head, scalp included",
                              ml, kStrippedHeadMl),
                  source_name);
    throw;
  }
  r.subject_to_template = reg.subject_to_template;
  r.registration_similarity = reg.similarity_after;
  ++progress;
  log::debug(fmt::format("  {:.1f} s", now_seconds() - t_start));

  // Template brain in the subject: the prior.
  const Eigen::Matrix4d s2t = reg.subject_to_template;
  Mask prior = threshold(resample_affine(to_image(templ_brain), t1.grid, s2t, Interp::Linear), 0.5f);
  prior = mask_and(prior, r.head);
  if (volume_ml(prior) < 400.0)
    throw Error("the template brain does not land inside the head: registration failed", source_name);
  ++progress;
  log::debug(fmt::format("  {:.1f} s", now_seconds() - t_start));

  // The brain stage works in the prior's bounding box (a third of a typical field of view).
  const Crop box = bounding_crop(prior, static_cast<std::int64_t>(std::ceil(20.0 / t1.grid.spacing_mm().minCoeff())));
  const Mask brain_box = extract_brain(crop(corrected, box), crop(prior, box), crop(r.head, box), source_name);
  refuse_stripped_input(r.head, brain_box, box, source_name);
  Mask brain = uncrop(brain_box, t1.grid, box);
  ++progress;
  log::debug(fmt::format("  {:.1f} s", now_seconds() - t_start));

  // Final bias field from the brain alone (cleaner tissue histogram), applied to the whole image.
  BiasOptions brain_bias;
  brain_bias.smoothing_mm = 25.0;
  const Image field = estimate_bias_field(corrected, brain, brain_bias);
  r.corrected = divide(corrected, field);
  r.bias_field = Image(t1.grid, 0.0f);
  for (std::size_t i = 0; i < r.bias_field.data.size(); ++i)
    r.bias_field.data[i] = std::max(1e-3f, field_head.data[i]) * std::max(1e-3f, field.data[i]);
  r.brain = std::move(brain);
  ++progress;
  log::debug(fmt::format("  {:.1f} s", now_seconds() - t_start));
  return r;
}

}  // namespace tmsplan
