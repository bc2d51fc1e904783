#pragma once
// Image pyramid helpers for registration (private to lib/registration).
#include <vector>

#include "tmsplan/image.hpp"

namespace tmsplan::registration_detail {

// Separable Gaussian blur with the given sigma in mm along every axis (converted to voxels per
// axis; axes whose sigma is below a quarter voxel are left alone). Truncated at 3 sigma, weights
// renormalised at the borders. Deterministic and parallel over lines.
Image gaussian_blur_mm(const Image& image, double sigma_mm);

// A smoothed copy resampled on a grid with the same axes and `spacing_mm` per axis (never finer
// than the input), centred on the input's field of view. sigma_mm is the extra blur applied
// before resampling.
Image downsample(const Image& image, double spacing_mm, double sigma_mm);

// The q-quantile (0..1) of `values` (copied), by nth_element: exact and deterministic.
float quantile(std::vector<float> values, double q);

// Every `stride`-th voxel value, in storage order (a deterministic subsample for statistics).
std::vector<float> strided_values(const Image& image, std::size_t stride);

// Chessboard dilation of a 0/1 mask by `radius` voxels along each axis (separable max filter).
Mask dilate(const Mask& mask, int radius);

}  // namespace tmsplan::registration_detail
