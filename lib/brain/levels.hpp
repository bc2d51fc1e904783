#pragma once
// Tissue intensity levels of a T1 for skull-strip's brain boundary (brain's private header).
#include <array>
#include <vector>

namespace tmsplan::brain {

struct TissueLevels {
  std::array<double, 3> kmeans{0, 0, 0};  ///< plain three-class k-means means (CSF, GM, WM)
  std::array<double, 3> pure{0, 0, 0};    ///< pure-tissue levels (partial-volume classes apart)
};

/// The CSF, GM and WM levels of `values` (the voxels of the brain prior's core). Throws Error on
/// fewer than 1000 values.
TissueLevels tissue_levels(const std::vector<float>& values);

}  // namespace tmsplan::brain
