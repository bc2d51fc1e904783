#pragma once
// Image pyramid helpers for registration (private to lib/registration). The blur, the quantile and
// the box dilation are filters.hpp's (issue 18: one of each primitive).
#include <vector>

#include "tmsplan/filters.hpp"
#include "tmsplan/image.hpp"

namespace tmsplan::registration_detail {

// A smoothed copy (filters' gaussian_smooth, sigma_mm) resampled on a grid with the same axes and
// `spacing_mm` per axis (never finer than the input), centred on the input's field of view.
Image downsample(const Image& image, double spacing_mm, double sigma_mm);

// Every `stride`-th voxel value, in storage order (a deterministic subsample for statistics).
std::vector<float> strided_values(const Image& image, std::size_t stride);

// Kept for cortex_map.cpp: filters' quantile of a list, and the chessboard dilation by voxels.
using tmsplan::quantile;
inline Mask dilate(const Mask& mask, int radius_vox) { return dilate_box(mask, radius_vox); }

}  // namespace tmsplan::registration_detail
