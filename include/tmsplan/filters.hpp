#pragma once
/// Volume filters shared by the tools: smoothing, distance maps, morphology in millimetres,
/// connected components, thresholds, overlap. All deterministic whatever the thread count.
#include <vector>

#include "tmsplan/image.hpp"

namespace tmsplan {

/// The normalised 1D Gaussian kernel the separable Gaussian uses (radius ceil(3 sigma), at least 1).
std::vector<double> gaussian_kernel(double sigma_vox);
/// Accumulation precision of the separable Gaussian.
enum class Precision { Double, Single };
/// The library's one separable Gaussian, in place, sigma per axis in voxels: kernel truncated at
/// 3 sigma and normalised, the border value continued beyond the grid, axes whose sigma is below
/// 0.1 voxel left alone. Double accumulation by default; Single (float) where it runs in a loop
/// (the registration's field smoothing). The same result whatever the thread count.
void gaussian_smooth_voxels(Image& image, const Eigen::Vector3d& sigma_vox, Precision precision = Precision::Double);
/// Separable Gaussian along the voxel axes, sigma in mm (per-axis spacing respected).
Image gaussian_smooth(const Image& image, double sigma_mm);
/// The same restricted to a mask: normalised convolution (values outside do not leak in).
Image masked_smooth(const Image& image, const Mask& mask, double sigma_mm);

/// Exact Euclidean distance (mm) from every voxel to the nearest voxel where mask is set
/// (0 on the mask). Anisotropic spacing respected.
Image distance_to(const Mask& mask);
/// Dilation and erosion by a ball of radius_mm: the voxel offsets within radius_mm + 1 um (voxels
/// beyond the grid count as neither set nor background). Computed in the mask's bounding box,
/// by rows of the ball for small balls, by the distance transform for large ones.
Mask dilate(const Mask& mask, double radius_mm);
Mask erode(const Mask& mask, double radius_mm);
/// The mask's voxels within width_mm of its outside: the mask minus its erosion by width_mm.
Mask outer_layer(const Mask& mask, double width_mm);
/// The same by several radii at once (one distance transform for all): out[i] is
/// dilate(mask, radii_mm[i]), resp. erode(mask, radii_mm[i]).
std::vector<Mask> dilate(const Mask& mask, const std::vector<double>& radii_mm);
std::vector<Mask> erode(const Mask& mask, const std::vector<double>& radii_mm);
Mask open(const Mask& mask, double radius_mm);
Mask close(const Mask& mask, double radius_mm);
/// Dilation by a box (chessboard distance) of radius_vox voxels along each axis.
Mask dilate_box(const Mask& mask, int radius_vox);

/// 6-connected components; labels 1..n ordered by first voxel in memory; sizes[label].
struct Components {
  Volume<std::int32_t> labels;
  std::vector<std::size_t> sizes;  ///< sizes[0] unused
};
Components connected_components(const Mask& mask);
Mask largest_component(const Mask& mask);
/// Keeps the components that overlap `seed`.
Mask components_touching(const Mask& mask, const Mask& seed);
/// Fills every background region not connected to the volume's border.
Mask fill_holes(const Mask& mask);
/// Fills holes slice by slice along each axis (closes cavities open to one side in 3D).
Mask fill_holes_2d(const Mask& mask);

Mask mask_and(const Mask& a, const Mask& b);
Mask mask_or(const Mask& a, const Mask& b);
Mask mask_not(const Mask& a);
std::size_t count(const Mask& mask);
double volume_ml(const Mask& mask);
/// Volume (ml) of the mask's voxels on the faces of its grid: where the field of view cuts it.
double volume_on_faces_ml(const Mask& mask);
double dice(const Mask& a, const Mask& b);

/// A box of a grid: its own grid (with the right world position) and its offset in the parent.
struct Crop {
  Grid grid;
  std::array<std::int64_t, 3> offset{0, 0, 0};
};
/// The bounding box of a mask, grown by margin_vox voxels and clipped to the grid.
Crop bounding_crop(const Mask& mask, std::int64_t margin_vox);
template <class T> Volume<T> crop(const Volume<T>& v, const Crop& c) {
  Volume<T> out(c.grid);
  for (std::int64_t k = 0; k < c.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < c.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < c.grid.dim[0]; ++i)
        out(i, j, k) = v(i + c.offset[0], j + c.offset[1], k + c.offset[2]);
  return out;
}
/// Puts a cropped volume back into a full grid (fill elsewhere).
template <class T> Volume<T> uncrop(const Volume<T>& v, const Grid& full, const Crop& c, T fill = T{}) {
  Volume<T> out(full, fill);
  for (std::int64_t k = 0; k < c.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < c.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < c.grid.dim[0]; ++i)
        out(i + c.offset[0], j + c.offset[1], k + c.offset[2]) = v(i, j, k);
  return out;
}

/// Mean world position (RAS mm) of the voxels in the mask.
Eigen::Vector3d centroid_ras(const Mask& mask);

/// Value at the q-quantile (0..1) of the voxels (of those inside mask, when given): the element of
/// rank floor(q (n - 1)), exact (nth_element). Throws Error on an empty set.
double quantile(const Image& image, double q, const Mask* mask = nullptr);
/// The same of a list of values (taken by value: reordered); 0 for an empty list.
float quantile(std::vector<float> values, double q);
/// Reorders values so that each position in `ranks` (ascending, each < values.size()) holds the
/// element a full sort would put there, by nested selections (each splits the range for the rest).
void select_ranks(std::vector<float>& values, const std::vector<std::size_t>& ranks);
/// Otsu's threshold of the voxels (inside mask when given), over a 256-bin histogram.
double otsu_threshold(const Image& image, const Mask* mask = nullptr);

}  // namespace tmsplan
