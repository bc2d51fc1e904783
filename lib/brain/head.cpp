// Head (scalp) mask: threshold between background noise and skin, keep the head, fill cavities.
#include <algorithm>
#include <array>
#include <cmath>

#include "tmsplan/brain.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {
namespace {

constexpr double kSkinSigmaMm = 15.0;    // the skin's local brightness: averaged over sigma 15 mm ...
constexpr double kSkinBlockMm = 4.0;     // ... on a grid of ~4 mm blocks (the field is smooth)
constexpr double kSkinMinWeight = 0.02;  // ... and 1 (the global level) where the shell's weight is below 2 %

// The skin's brightness near each voxel relative to its mean over the whole shell: the shell's
// intensities averaged with a Gaussian (normalised convolution, on blocks of ~4 mm), trilinear
// back on `t1`'s grid; 1 where no shell lies near. A smooth receive-coil bias moves a global
// half-way level across the skin edge; scaled locally it stays half-way (docs/skull-strip.md).
Image relative_skin_level(const Image& t1, const Mask& shell) {
  const Eigen::Vector3d sp = t1.grid.spacing_mm();
  const auto& d = t1.grid.dim;
  std::array<std::int64_t, 3> f{};
  Grid coarse;
  Eigen::Matrix4d scale = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    f[std::size_t(a)] = std::max<std::int64_t>(1, std::lround(kSkinBlockMm / sp[a]));
    coarse.dim[std::size_t(a)] = (d[std::size_t(a)] + f[std::size_t(a)] - 1) / f[std::size_t(a)];
    scale(a, a) = double(f[std::size_t(a)]);
    scale(a, 3) = 0.5 * double(f[std::size_t(a)] - 1);  // a block's centre
  }
  coarse.vox2ras = RasMatrix(t1.grid.vox2ras.m * scale);
  Image num(coarse, 0.0f), den(coarse, 0.0f);
  double total = 0.0;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i) {
        if (!shell(i, j, k)) continue;
        const float v = t1(i, j, k);
        num(i / f[0], j / f[1], k / f[2]) += v;
        den(i / f[0], j / f[1], k / f[2]) += 1.0f;
        total += v;
        ++n;
      }
  num = gaussian_smooth(num, kSkinSigmaMm);
  den = gaussian_smooth(den, kSkinSigmaMm);
  const double mean = total / double(std::max<std::size_t>(1, n));
  const float min_weight = float(kSkinMinWeight * double(f[0] * f[1] * f[2]));
  Image ratio(coarse, 1.0f);
  for (std::size_t i = 0; i < ratio.data.size(); ++i)
    if (den.data[i] > min_weight && mean > 0.0) ratio.data[i] = float(num.data[i] / den.data[i] / mean);
  return resample_affine(ratio, t1.grid, Eigen::Matrix4d::Identity(), Interp::Linear, 1.0f);
}

// Bright noise outside the head (MP2RAGE's uniform image and other ratio images: the background
// is salt-and-pepper over the whole range). Along the rows of the image's faces, the share of
// neighbouring voxel pairs on opposite sides of Otsu's threshold: 0.000-0.020 on the Philips scan,
// Colin27, their copies, a tightly cropped and a cut Philips; 0.46 on the Philips scan with its
// background replaced by uniform noise. There the skin cannot be told from the noise: the dim
// forehead skin of that copy went with it and the DLPFC coils moved 14-16 mm (docs/skull-strip.md).
constexpr double kNoisyFaceTransitions = 0.2;

bool bright_noisy_background(const Image& t1, double otsu) {
  const auto t = static_cast<float>(otsu);
  std::size_t pairs = 0, changes = 0;
  t1.grid.for_each_face_voxel([&](std::int64_t i, std::int64_t j, std::int64_t k) {
    // The next voxel along a face's row: along i, or along j on the two faces normal to i.
    const bool i_face =
        (i == 0 || i == t1.grid.dim[0] - 1) && j > 0 && j < t1.grid.dim[1] - 1 && k > 0 && k < t1.grid.dim[2] - 1;
    const std::int64_t ni = i_face ? i : i + 1, nj = i_face ? j + 1 : j;
    if (!t1.grid.inside(ni, nj, k)) return;
    ++pairs;
    changes += (t1(i, j, k) > t) != (t1(ni, nj, k) > t) ? 1 : 0;
  });
  return pairs > 0 && double(changes) > kNoisyFaceTransitions * double(pairs);
}

}  // namespace

Mask head_mask(const Image& t1, const std::string& source_name) {
  const double t0 = otsu_threshold(t1);
  if (bright_noisy_background(t1, t0))
    throw Error("the background is bright noise, as in MP2RAGE's uniform (UNI) image, and the head's skin cannot be "
                "told from it; give a head T1 whose background is dark (e.g. UNI with its background suppressed "
                "using INV2)",
                source_name);
  // 1. Otsu over the whole field of view (t0) separates background from tissue.
  const Mask above = threshold(t1, static_cast<float>(t0));
  Mask rough = largest_component(above);
  if (count(rough) == 0) throw Error("no foreground found: not a head scan", source_name);

  // 2. The skin boundary lies half-way between background and skin intensity (partial volume):
  //    background level from the voxels below Otsu's threshold, skin level from the outer shell
  //    of the head (its median, scaled by the shell's local brightness). The work happens in the
  //    head's bounding box.
  const Mask dark = mask_not(above);
  const double background = quantile(t1, 0.5, &dark);
  const Crop box = bounding_crop(rough, static_cast<std::int64_t>(std::ceil(6.0 / t1.grid.spacing_mm().minCoeff())));
  const Image t1_box = crop(t1, box);
  const Mask rough_box = crop(rough, box);
  const Mask shell = outer_layer(rough_box, 3.0);
  if (count(shell) < 1000) throw Error("no head surface found: not a head scan", source_name);
  const double skin = quantile(t1_box, 0.5, &shell);
  log::debug(fmt::format("head mask: background {:.4g}, skin {:.4g} (scaled locally)", background, skin));

  const Image relative = relative_skin_level(t1_box, shell);
  Mask above_level(t1_box.grid, 0);
  for (std::size_t i = 0; i < above_level.data.size(); ++i)
    above_level.data[i] = t1_box.data[i] > 0.5 * (background + skin * double(relative.data[i])) ? 1 : 0;
  Mask head = largest_component(above_level);
  // 3. Noise specks and hair-thin ghosts off, small gaps closed, cavities (sinuses, mouth, ear
  //    canals) filled in 3D and slice by slice.
  head = largest_component(open(head, 1.0));
  head = close(head, 2.0);
  head = fill_holes(head);
  head = fill_holes_2d(head);

  // 4. Does this look like a head? Compact (not a speckle of noise) and of a plausible size.
  const double ml = volume_ml(head);
  const double solidity = double(count(erode(head, 1.5))) / double(std::max<std::size_t>(1, count(head)));
  const double contrast = (skin - background) / std::max(1e-9, std::abs(skin) + std::abs(background));
  log::debug(fmt::format("head mask: {:.0f} ml, solidity {:.3f}, contrast {:.3f}", ml, solidity, contrast));
  if (ml < 300.0) throw Error(fmt::format("foreground of {:.0f} ml is too small for a head", ml), source_name);
  if (ml > 30000.0) throw Error(fmt::format("foreground of {:.0f} ml is too large for a head", ml), source_name);
  if (solidity < 0.75 || contrast < 0.3)
    throw Error(fmt::format("no compact head found (solidity {:.2f}, contrast {:.2f}): noise or not a head scan",
                            solidity, contrast),
                source_name);
  return uncrop(head, t1.grid, box);
}

}  // namespace tmsplan
