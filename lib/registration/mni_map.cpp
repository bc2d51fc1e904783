// The two-way point map between the template (MNI) and a subject: affine + displacement fields,
// the inverse field by fixed-point iteration, resampling through the map, and the subject-folder
// files (save / load).
#include <Eigen/Dense>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "mni_map_internal.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/mni_map.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/registration.hpp"
#include "tmsplan/transform_io.hpp"

namespace tmsplan {
namespace registration_detail {

FieldSampler::FieldSampler(const DisplacementField& f) : field(&f) {
  const Eigen::Matrix4d inv = f.grid.vox2ras.m.inverse();
  r2v = inv.topLeftCorner<3, 3>();
  off = inv.topRightCorner<3, 1>();
}

}  // namespace registration_detail

using registration_detail::FieldSampler;

namespace {

// The slice that position n of a loop over `slices` slices handles: the even slices, then the odd
// ones. The maps' per-voxel work lies where a grid reaches into the other (the inverse) or in a
// mask (resampling restricted to grey matter), i.e. unevenly along the slices; parallel_for's
// contiguous blocks of this order load the threads evenly. Each voxel is computed alone, so the
// bytes do not depend on the split.
std::int64_t interleaved_slice(std::int64_t n, std::int64_t slices) {
  const std::int64_t evens = (slices + 1) / 2;
  return n < evens ? 2 * n : 2 * (n - evens) + 1;
}

}  // namespace

DisplacementField::DisplacementField(const Grid& g) : grid(g) {
  for (auto& c : d) c.assign(g.voxels(), 0.0f);
}

Eigen::Vector3d DisplacementField::at(const Eigen::Vector3d& ras) const {
  if (empty()) return Eigen::Vector3d::Zero();
  return FieldSampler(*this)(ras);
}

double DisplacementField::max_norm_mm() const {
  double m = 0.0;
  for (std::size_t i = 0; i < grid.voxels() && !empty(); ++i) m = std::max(m, at_voxel(i).norm());
  return m;
}

MniMap::MniMap(const Eigen::Matrix4d& template_to_subject, DisplacementField to_mni_warp,
               DisplacementField from_mni_warp)
    : a_(template_to_subject), a_inv_(template_to_subject.inverse()), u_(std::move(to_mni_warp)),
      w_(std::move(from_mni_warp)) {
  if (!a_.allFinite() || !a_inv_.allFinite()) throw Error("MNI map: the affine is singular or not finite");
}

Eigen::Vector3d MniMap::to_subject(const Eigen::Vector3d& mni) const { return apply_affine(a_, mni + u_.at(mni)); }

Eigen::Vector3d MniMap::to_mni(const Eigen::Vector3d& subject_ras) const {
  return apply_affine(a_inv_, subject_ras + w_.at(subject_ras));
}

namespace {

// For each voxel of `grid`: world point q -> source world point through `pre` displacement (on
// `grid` itself when it matches, else sampled) and then the affine `m`; samples `src` there.
Image resample_through(const Image& src, const Grid& grid, const DisplacementField& field, const Eigen::Matrix4d& m,
                       Interp interp, float outside, const Mask* only = nullptr) {
  if (only && !only->grid.same_as(grid)) throw Error("resampling mask is not on the output grid");
  Image out(grid, outside);
  const bool same = !field.empty() && field.grid.same_as(grid, 1e-4);
  const FieldSampler sampler(field);
  const Eigen::Matrix4d src_r2v = src.grid.vox2ras.m.inverse() * m;
  const Eigen::Matrix3d lin = src_r2v.topLeftCorner<3, 3>();
  const Eigen::Vector3d off = src_r2v.topRightCorner<3, 1>();
  const auto& d = grid.dim;
  parallel_for(d[2], [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t j = 0, k = interleaved_slice(n, d[2]); j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const std::size_t idx = grid.index(i, j, k);
          if (only && !only->data[idx]) continue;
          Eigen::Vector3d q = grid.ras(i, j, k).v;
          if (same) {
            q += field.at_voxel(idx);
          } else if (!field.empty()) {
            q += sampler(q);
          }
          out.data[idx] = sample(src, lin * q + off, interp, outside);
        }
  });
  return out;
}

}  // namespace

Image MniMap::template_to_subject_image(const Image& mni_image, const Grid& subject_grid, Interp interp, float outside,
                                        const Mask* only) const {
  return resample_through(mni_image, subject_grid, w_, a_inv_, interp, outside, only);
}

Image MniMap::subject_to_template_image(const Image& subject_image, const Grid& template_grid, Interp interp,
                                        float outside) const {
  return resample_through(subject_image, template_grid, u_, a_, interp, outside);
}

DisplacementField invert_to_subject_grid(const Eigen::Matrix4d& template_to_subject, const DisplacementField& u,
                                         const Grid& subject_grid) {
  DisplacementField w(subject_grid);
  if (u.empty()) return w;
  const Eigen::Matrix4d a_inv = template_to_subject.inverse();
  const Eigen::Matrix3d a_lin = template_to_subject.topLeftCorner<3, 3>();
  const FieldSampler sampler(u);
  // The template point x solving x + u(x) = x0 (x0 = A^-1 y) is the fixed point of x0 - u(x);
  // it converges because the smoothed field's Jacobian stays well below 1 in norm.
  // The work lies where the template's grid reaches (zero elsewhere): slices interleaved.
  const auto& d = subject_grid.dim;
  parallel_for(d[2], [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t j = 0, k = interleaved_slice(n, d[2]); j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          const Eigen::Vector3d x0 = apply_affine(a_inv, subject_grid.ras(i, j, k).v);
          const Eigen::Vector3d v0 = sampler.r2v * x0 + sampler.off;
          Eigen::Vector3d du = sampler.at_voxel(v0);
          if (du.squaredNorm() == 0.0) continue;
          for (int it = 0; it < 60; ++it) {
            const Eigen::Vector3d x = x0 - du;
            const Eigen::Vector3d next = sampler.at_voxel(sampler.r2v * x + sampler.off);
            const double change = (next - du).squaredNorm();
            du = next;
            if (change < 1e-8) break;  // 1e-4 mm
          }
          const Eigen::Vector3d wv = -a_lin * du;
          const std::size_t idx = subject_grid.index(i, j, k);
          for (int c = 0; c < 3; ++c) w.d[std::size_t(c)][idx] = static_cast<float>(wv[c]);
        }
  });
  return w;
}

void MniMap::save(const std::string& dir, bool force) const {
  if (u_.empty() || w_.empty()) throw Error("MNI map: cannot save a map without both displacement fields", dir);
  const std::string base = dir.empty() ? std::string(".") : dir;
  write_itk_affine(base + "/" + kToMniAffine, a_, force);
  write_displacement_field(base + "/" + kToMniWarp, u_, Frame::Mni, force);
  write_itk_affine(base + "/" + kFromMniAffine, a_inv_, force);
  write_displacement_field(base + "/" + kFromMniWarp, w_, Frame::Aligned, force);
}

MniMap MniMap::load(const std::string& dir) {
  const std::string base = dir.empty() ? std::string(".") : dir;
  try {
    const Eigen::Matrix4d a = read_itk_affine(base + "/" + kToMniAffine);
    const Eigen::Matrix4d b = read_itk_affine(base + "/" + kFromMniAffine);
    const double mismatch = (b * a - Eigen::Matrix4d::Identity()).cwiseAbs().maxCoeff();
    if (!(mismatch < 1e-6))
      throw Error(fmt::format("{} and {} are not inverse to each other (max deviation {:.3g})", kToMniAffine,
                              kFromMniAffine, mismatch),
                  base);
    DisplacementField u, w;
    parallel_tasks({[&] { u = read_displacement_field(base + "/" + kToMniWarp); },
                    [&] { w = read_displacement_field(base + "/" + kFromMniWarp); }});
    return MniMap(a, std::move(u), std::move(w));
  } catch (...) {
    rethrow_with_context("reading the MNI transforms", base);
  }
}

}  // namespace tmsplan
