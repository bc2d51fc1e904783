#pragma once
/// Sampling and resampling between grids in world RAS.
#include <functional>

#include "tmsplan/image.hpp"

namespace tmsplan {

enum class Interp { Nearest, Linear };

/// Value at a fractional voxel index; `outside` beyond the grid (linear uses edge clamping within
/// half a voxel of the border).
float sample(const Image& image, const Eigen::Vector3d& ijk, Interp interp, float outside = 0.0f);

/// For each voxel of `grid` at world point q, takes src at world point map(q).
using WorldMap = std::function<Eigen::Vector3d(const Eigen::Vector3d&)>;
Image resample(const Image& src, const Grid& grid, const WorldMap& target_to_source, Interp interp,
               float outside = 0.0f);
/// The same with an affine map given as a 4x4 RAS->RAS matrix.
Image resample_affine(const Image& src, const Grid& grid, const Eigen::Matrix4d& target_to_source, Interp interp,
                      float outside = 0.0f);
Mask resample_mask(const Mask& src, const Grid& grid, const WorldMap& target_to_source);

/// Converts between mask and float image.
Image to_image(const Mask& mask);
Mask threshold(const Image& image, float above);

}  // namespace tmsplan
