// Head (scalp) mask: threshold between background noise and skin, keep the head, fill cavities.
#include <cmath>

#include "tmsplan/brain.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {

Mask head_mask(const Image& t1, const std::string& source_name) {
  // 1. Otsu over the whole field of view separates background from tissue.
  const double t0 = otsu_threshold(t1);
  const Mask above = threshold(t1, static_cast<float>(t0));
  Mask rough = largest_component(above);
  if (count(rough) == 0) throw Error("no foreground found: not a head scan", source_name);

  // 2. The skin boundary lies half-way between background and skin intensity (partial volume):
  //    background level from the voxels below Otsu's threshold, skin level from the outer shell
  //    of the head. The work happens in the head's bounding box.
  const Mask dark = mask_not(above);
  const double background = quantile(t1, 0.5, &dark);
  const Crop box = bounding_crop(rough, static_cast<std::int64_t>(std::ceil(6.0 / t1.grid.spacing_mm().minCoeff())));
  const Image t1_box = crop(t1, box);
  const Mask rough_box = crop(rough, box);
  const Mask shell = mask_and(rough_box, mask_not(erode(rough_box, 3.0)));
  if (count(shell) < 1000) throw Error("no head surface found: not a head scan", source_name);
  const double skin = quantile(t1_box, 0.5, &shell);
  const double level = 0.5 * (background + skin);
  log::debug(fmt::format("head mask: background {:.4g}, skin {:.4g}, level {:.4g}", background, skin, level));

  Mask head = largest_component(threshold(t1_box, static_cast<float>(level)));
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
