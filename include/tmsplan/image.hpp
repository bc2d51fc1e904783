#pragma once
/// Volumes in memory: a voxel grid with its voxel->RAS matrix and the voxel values, x fastest
/// (NIfTI order). No ITK here: ITK stays inside lib/.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tmsplan/geometry.hpp"

namespace tmsplan {

/// Largest volume any tool accepts (1024^3 voxels): refused before allocating.
inline constexpr std::uint64_t kMaxVoxels = 1024ull * 1024ull * 1024ull;

/// Voxel grid: sizes along i, j, k and the voxel-centre -> world RAS mm matrix.
struct Grid {
  std::array<std::int64_t, 3> dim{0, 0, 0};
  RasMatrix vox2ras;

  std::size_t voxels() const { return static_cast<std::size_t>(dim[0] * dim[1] * dim[2]); }
  /// Voxel edge lengths in mm (column norms of the 3x3 part).
  Eigen::Vector3d spacing_mm() const;
  /// Same dimensions and every voxel centre within tol_mm.
  bool same_as(const Grid& other, double tol_mm = 1e-3) const;
  std::size_t index(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return static_cast<std::size_t>(i + dim[0] * (j + dim[1] * k));
  }
  bool inside(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return i >= 0 && j >= 0 && k >= 0 && i < dim[0] && j < dim[1] && k < dim[2];
  }
  RasPoint ras(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return voxel_to_ras(vox2ras, VoxelIndex(double(i), double(j), double(k)));
  }
  double voxel_volume_ml() const;
  /// Calls f(i, j, k) once for every voxel on a face of the grid (the field of view's edge).
  template <class F> void for_each_face_voxel(F&& f) const {
    for (std::int64_t k = 0; k < dim[2]; ++k)
      for (std::int64_t j = 0; j < dim[1]; ++j) {
        if (k == 0 || k == dim[2] - 1 || j == 0 || j == dim[1] - 1) {
          for (std::int64_t i = 0; i < dim[0]; ++i) f(i, j, k);
        } else {
          f(std::int64_t{0}, j, k);
          if (dim[0] > 1) f(dim[0] - 1, j, k);
        }
      }
  }
};

template <class T> struct Volume {
  Grid grid;
  std::vector<T> data;

  Volume() = default;
  explicit Volume(const Grid& g, T fill = T{}) : grid(g), data(g.voxels(), fill) {}
  T& operator()(std::int64_t i, std::int64_t j, std::int64_t k) { return data[grid.index(i, j, k)]; }
  T operator()(std::int64_t i, std::int64_t j, std::int64_t k) const { return data[grid.index(i, j, k)]; }
};

using Image = Volume<float>;
using Mask = Volume<std::uint8_t>;
using Labels = Volume<std::uint8_t>;

/// What reading found besides the voxels: the source format and any warnings.
struct ImageInfo {
  std::string path;
  std::string format;  ///< "nifti", "nifti-gz" or "dicom"
  std::string source_datatype;
  std::vector<std::string> warnings;
};

struct ReadOptions {
  /// DICOM directories with several 3D series need the series instance UID to read.
  std::string series_uid;
  /// Refuse images whose voxels all have the same value (right for a T1, wrong for a mask).
  bool refuse_constant = true;
};

/// Reads a NIfTI-1 file (.nii, .nii.gz) or a DICOM series directory into RAS-framed float voxels,
/// after the header's scaling. Refuses broken or absurd input before allocating; throws Error.
Image read_image(const std::string& path, const ReadOptions& options = {}, ImageInfo* info = nullptr);
/// Reads a mask (any datatype; voxels > 0.5 are inside) and checks it lies on `grid` when given.
Mask read_mask(const std::string& path, const Grid* grid = nullptr);

/// Voxel type on disk.
enum class DiskType { UInt8, Int16, Float32 };

/// Which world frame the written header claims (NIfTI xform codes).
enum class Frame { Aligned = 2, Mni = 4 };

struct WriteOptions {
  bool force = false;  ///< overwrite an existing file
  DiskType type = DiskType::Float32;
  Frame frame = Frame::Aligned;
  std::string description;  ///< NIfTI descrip (80 chars at most, truncated)
  int gzip_level = 1;
};

/// Writes NIfTI-1 (.nii or .nii.gz by extension) with qform = sform, atomically; refuses to
/// overwrite without options.force. Same input, same bytes.
void write_image(const std::string& path, const Image& image, const WriteOptions& options);
void write_mask(const std::string& path, const Mask& mask, WriteOptions options);

/// Reorders the voxel axes (flips and permutations only, no resampling) so that i, j, k run as
/// close as possible to R, A, S. World positions of all voxels are unchanged.
Image reorient_closest_ras(const Image& image);

}  // namespace tmsplan
