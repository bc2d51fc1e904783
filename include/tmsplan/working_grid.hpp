#pragma once
/// The working grid (issue 16): a step works on a grid near 1 mm whatever the input's spacing and
/// storage, while the outputs users load keep the input grid. Masks and labels come back to the
/// input grid from a smooth representation (fractions, or a smoothed indicator) thresholded there,
/// so no staircase of the coarser grid shows. On an input of about 1 mm nothing changes: choose()
/// returns the input grid itself and callers keep their one-grid path (same bytes as before).
#include "tmsplan/image.hpp"

namespace tmsplan::workgrid {

/// The working spacing (mm) of skull-strip, segment and cortex-map.
inline constexpr double kSpacingMm = 1.0;

/// Same axes and world extent as `input`; every axis finer than 0.9 x spacing_mm gets voxels of
/// exactly spacing_mm (ceil(n / ratio) of them, the first starting where the input's first one
/// does), the other axes are kept. Returns `input` unchanged when no axis is finer (or spacing_mm
/// <= 0). The same rule as segment's working grid.
Grid choose(const Grid& input, double spacing_mm = kSpacingMm);

/// True when `work` is `input` itself (choose() found nothing to coarsen).
bool is_identity(const Grid& input, const Grid& work);

/// `image` on `work` (a grid from choose(input)): each working voxel is the mean, over its own box,
/// of the input's linear interpolant along each coarsened axis (area-weighted, anti-aliased: a
/// uniform image stays uniform, a linear one is sampled at the voxel centre); kept axes untouched.
Image to_work(const Image& image, const Grid& work);
/// The fraction of each working voxel inside `mask` (0..1, to_work of the indicator).
Image fraction_to_work(const Mask& mask, const Grid& work);
/// fraction_to_work thresholded at 0.5.
Mask mask_to_work(const Mask& mask, const Grid& work);
/// Per working voxel the label with the largest fraction (ties: the lower label), for labels 0..max.
Labels labels_to_work(const Labels& labels, const Grid& work);

/// A working-grid image on `input` by trilinear interpolation (edge-clamped within half a voxel).
Image image_to_input(const Image& image, const Grid& input);
/// A fraction or probability (0..1) on the working grid -> mask on `input`: trilinear, then > 0.5.
Mask fraction_to_input(const Image& fraction, const Grid& input);
/// A binary working-grid mask -> mask on `input`: its indicator smoothed along the coarsened axes
/// (binomial 1/4, 1/2, 1/4: rounds the staircase of oblique boundaries), trilinear, then > 0.5.
Mask mask_to_input(const Mask& mask, const Grid& input);
/// Working-grid labels -> `input` by nearest neighbour (labels that are already blocky, e.g. atlas
/// labels from a 1 mm template; restrict them to an input-grid mask afterwards).
Labels labels_to_input_nearest(const Labels& labels, const Grid& input);

}  // namespace tmsplan::workgrid
