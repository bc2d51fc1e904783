#include "tmsplan/image.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "nifti_internal.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/log.hpp"

namespace fs = std::filesystem;

namespace tmsplan {

namespace {
void check_voxel_values(const Image& image, const std::string& path, bool refuse_constant) {
  // Non-finite floats have all exponent bits set; NaN fails both comparisons, so it never becomes
  // lo or hi (and any non-finite voxel is refused anyway).
  std::size_t bad = 0;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  const float* data = image.data.data();
  const std::size_t n = image.data.size();
  std::size_t start = 0;
#ifdef __SSE2__
  // The same test and extremes four lanes at a time (minps / maxps return their second operand
  // when the first is NaN, as the scalar loop keeps lo / hi): GCC does not vectorise the float
  // min / max reductions without -ffast-math. A lane counts at most n / 4 voxels (32 bits hold
  // far more than any image in memory).
  {
    const __m128i exponent = _mm_set1_epi32(0x7f800000);
    __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
    __m128i vbad = _mm_setzero_si128();
    for (; start + 4 <= n; start += 4) {
      const __m128 v = _mm_loadu_ps(data + start);
      vbad = _mm_sub_epi32(vbad, _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(v), exponent), exponent));
      vlo = _mm_min_ps(v, vlo);
      vhi = _mm_max_ps(v, vhi);
    }
    alignas(16) float l[4], h[4];
    alignas(16) std::uint32_t b[4];
    _mm_store_ps(l, vlo);
    _mm_store_ps(h, vhi);
    _mm_store_si128(reinterpret_cast<__m128i*>(b), vbad);
    for (int q = 0; q < 4; ++q) {
      bad += b[q];
      lo = l[q] < lo ? l[q] : lo;
      hi = h[q] > hi ? h[q] : hi;
    }
  }
#endif
  for (std::size_t i = start; i < n; ++i) {
    const float v = data[i];
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    bad += (bits & 0x7f800000u) == 0x7f800000u;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  if (bad > 0) throw Error(std::to_string(bad) + " voxels are NaN or infinite", path);
  if (refuse_constant && !(hi > lo))
    throw Error("all voxels have the same value (" + std::to_string(lo) + "): not an image of a head", path);
}
}  // namespace

Image read_image(const std::string& path, const ReadOptions& options, ImageInfo* info) {
  check_input_path(path);
  std::error_code ec;
  Image image;
  if (fs::is_directory(path, ec)) {
    image = detail::read_dicom_series(path, options, info);
  } else {
    image = detail::read_nifti(path, options, info);
  }
  check_voxel_values(image, path, options.refuse_constant);
  return image;
}

Mask read_mask(const std::string& path, const Grid* grid) {
  check_input_path(path);
  std::error_code ec;
  Mask mask;
  // Masks as the tools write them (uint8) are read straight into the mask; anything else as an
  // image (checked values) and thresholded.
  if (fs::is_directory(path, ec) || !detail::read_nifti_uint8_mask(path, mask)) {
    ReadOptions options;
    options.refuse_constant = false;
    const Image image = read_image(path, options);
    mask = Mask(image.grid, 0);
    for (std::size_t i = 0; i < image.data.size(); ++i) mask.data[i] = image.data[i] > 0.5f ? 1 : 0;
  }
  if (grid && !mask.grid.same_as(*grid, 1e-2))
    throw Error("mask is not on the grid of the image it belongs to (dimensions or world position differ)", path);
  std::size_t inside = 0;
  for (const std::uint8_t v : mask.data) inside += v;
  if (inside == 0) throw Error("mask is empty", path);
  if (inside == mask.data.size()) throw Error("mask covers the whole volume", path);
  return mask;
}

void write_image(const std::string& path, const Image& image, const WriteOptions& options) {
  if (options.type == DiskType::Float32) {
    detail::write_nifti(path, image.grid, image.data.data(), DiskType::Float32, options);
    return;
  }
  if (options.type == DiskType::UInt8) {
    std::vector<std::uint8_t> bytes(image.data.size());
    for (std::size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = static_cast<std::uint8_t>(std::clamp(std::lround(image.data[i]), 0L, 255L));
    detail::write_nifti(path, image.grid, bytes.data(), DiskType::UInt8, options);
    return;
  }
  std::vector<std::int16_t> shorts(image.data.size());
  for (std::size_t i = 0; i < shorts.size(); ++i)
    shorts[i] = static_cast<std::int16_t>(std::clamp(std::lround(image.data[i]), -32768L, 32767L));
  detail::write_nifti(path, image.grid, shorts.data(), DiskType::Int16, options);
}

void write_mask(const std::string& path, const Mask& mask, WriteOptions options) {
  options.type = DiskType::UInt8;
  detail::write_nifti(path, mask.grid, mask.data.data(), DiskType::UInt8, options);
}

Image reorient_closest_ras(const Image& image) {
  const Eigen::Matrix3d a = image.grid.vox2ras.m.topLeftCorner<3, 3>();
  // For each world axis (R, A, S) pick the voxel axis most aligned with it, greedily by size.
  std::array<int, 3> axis_for_world{-1, -1, -1};
  std::array<bool, 3> used{false, false, false};
  Eigen::Matrix3d n = a;
  for (int c = 0; c < 3; ++c) n.col(c).normalize();
  for (int round = 0; round < 3; ++round) {
    double best = -1;
    int bw = 0, bv = 0;
    for (int w = 0; w < 3; ++w) {
      if (axis_for_world[w] >= 0) continue;
      for (int v = 0; v < 3; ++v) {
        if (used[v]) continue;
        if (std::abs(n(w, v)) > best) {
          best = std::abs(n(w, v));
          bw = w;
          bv = v;
        }
      }
    }
    axis_for_world[bw] = bv;
    used[bv] = true;
  }
  std::array<bool, 3> flip{};
  for (int w = 0; w < 3; ++w) flip[w] = n(w, axis_for_world[w]) < 0;

  Image out;
  for (int w = 0; w < 3; ++w) out.grid.dim[w] = image.grid.dim[axis_for_world[w]];
  // new index q (per world axis) -> old index p: p[axis_for_world[w]] = flip ? dim-1-q[w] : q[w]
  Eigen::Matrix4d new2old = Eigen::Matrix4d::Zero();
  new2old(3, 3) = 1;
  for (int w = 0; w < 3; ++w) {
    const int v = axis_for_world[w];
    if (flip[w]) {
      new2old(v, w) = -1;
      new2old(v, 3) = double(image.grid.dim[v] - 1);
    } else {
      new2old(v, w) = 1;
    }
  }
  out.grid.vox2ras = RasMatrix(image.grid.vox2ras.m * new2old);
  out.data.resize(image.data.size());
  std::int64_t p[3];
  for (std::int64_t k = 0; k < out.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < out.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < out.grid.dim[0]; ++i) {
        const std::int64_t q[3] = {i, j, k};
        for (int w = 0; w < 3; ++w) {
          const int v = axis_for_world[w];
          p[v] = flip[w] ? image.grid.dim[v] - 1 - q[w] : q[w];
        }
        out(i, j, k) = image(p[0], p[1], p[2]);
      }
  return out;
}

}  // namespace tmsplan
