// The working grid (include/tmsplan/working_grid.hpp): a near-1 mm grid on the input's axes, the
// box-averaged (anti-aliased) way there and the interpolated way back.
#include "tmsplan/working_grid.hpp"

#include <algorithm>
#include <cmath>

#include "tmsplan/error.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::workgrid {
namespace {

// How many input voxels make one working voxel along each axis (1 where the axis is kept).
Eigen::Vector3d ratios(const Grid& input, const Grid& work) {
  return work.spacing_mm().cwiseQuotient(input.spacing_mm());
}

bool coarsened(double ratio) { return std::abs(ratio - 1.0) > 1e-9; }

// One output sample along an axis: input indices and weights (summing to 1).
struct Taps {
  std::vector<std::int64_t> index;
  std::vector<float> weight;
};

// Integral of the unit hat function max(0, 1 - |x|) from -inf to u.
double hat_integral(double u) {
  if (u <= -1.0) return 0.0;
  if (u <= 0.0) return 0.5 * (u + 1.0) * (u + 1.0);
  if (u <= 1.0) return 1.0 - 0.5 * (1.0 - u) * (1.0 - u);
  return 1.0;
}

// Each working voxel: the mean over its box of the input's linear interpolant along the axis
// (area-weighted, so a uniform image stays uniform and a linear one is sampled at the working
// voxel's centre). Working index o sits at input coordinate c = o * ratio + (ratio - 1) / 2
// (choose()'s placement); its box is c +- ratio / 2. Weights are renormalised where the box
// passes the input's last voxel centre (the edge value continues).
std::vector<Taps> box_taps(std::int64_t n_in, std::int64_t n_out, double ratio) {
  std::vector<Taps> taps(static_cast<std::size_t>(n_out));
  for (std::int64_t o = 0; o < n_out; ++o) {
    const double c = double(o) * ratio + 0.5 * (ratio - 1.0);
    const double a = c - 0.5 * ratio, b = c + 0.5 * ratio, last = double(n_in - 1);
    const double aa = std::max(a, 0.0), bb = std::min(b, last);  // the interpolant's own range
    const auto lo = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(a)));
    const auto hi = std::min<std::int64_t>(n_in - 1, static_cast<std::int64_t>(std::ceil(b)));
    Taps& t = taps[std::size_t(o)];
    double sum = 0.0;
    std::vector<double> w;
    for (std::int64_t i = lo; i <= hi; ++i) {
      double wi = bb > aa ? hat_integral(bb - double(i)) - hat_integral(aa - double(i)) : 0.0;
      // The edge voxels also carry the part of the box beyond them (the edge value continues).
      if (i == 0 && a < 0.0) wi += std::min(0.0, b) - a;
      if (i == n_in - 1 && b > last) wi += b - std::max(a, last);
      if (wi <= 0.0) continue;
      t.index.push_back(i);
      w.push_back(wi);
      sum += wi;
    }
    if (t.index.empty()) {  // beyond the input (cannot happen with choose()'s sizes): nearest voxel
      t.index.push_back(std::clamp<std::int64_t>(std::llround(c), 0, n_in - 1));
      w.push_back(1.0);
      sum = 1.0;
    }
    for (double wi : w) t.weight.push_back(static_cast<float>(wi / sum));
  }
  return taps;
}

// data (dims d) -> along `axis`, sample o = sum of taps[o]; d[axis] becomes taps.size().
std::vector<float> apply_axis(const std::vector<float>& in, std::array<std::int64_t, 3>& d, int axis,
                              const std::vector<Taps>& taps) {
  std::array<std::int64_t, 3> od = d;
  od[std::size_t(axis)] = static_cast<std::int64_t>(taps.size());
  std::vector<float> out(static_cast<std::size_t>(od[0] * od[1] * od[2]), 0.0f);
  // Strides of the axis in the input and output; the loop runs over the other two axes.
  const std::int64_t in_stride = axis == 0 ? 1 : axis == 1 ? d[0] : d[0] * d[1];
  // Every output voxel is written by one call (the same sum in the same order whatever the threads).
  parallel_for(od[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < od[1]; ++j)
        for (std::int64_t i = 0; i < od[0]; ++i) {
          const std::int64_t o = axis == 0 ? i : axis == 1 ? j : k;
          // The input line's start: this voxel's position with the axis index set to 0.
          const std::int64_t base_in = (axis == 0 ? 0 : i) + d[0] * ((axis == 1 ? 0 : j) + d[1] * (axis == 2 ? 0 : k));
          const Taps& t = taps[std::size_t(o)];
          float s = 0.0f;
          for (std::size_t q = 0; q < t.index.size(); ++q)
            s += t.weight[q] * in[static_cast<std::size_t>(base_in + t.index[q] * in_stride)];
          out[static_cast<std::size_t>(i + od[0] * (j + od[1] * k))] = s;
        }
  });
  d = od;
  return out;
}

// The working grid must be coarser than (or the same as) the input along every axis.
void check_work(const Grid& input, const Grid& work) {
  const Eigen::Vector3d r = ratios(input, work);
  for (int a = 0; a < 3; ++a)
    if (work.dim[std::size_t(a)] > input.dim[std::size_t(a)] || r[a] < 1.0 - 1e-9)
      throw Error("working grid is finer than the input (internal error)");
}

}  // namespace

Grid choose(const Grid& input, double spacing_mm) {
  const Eigen::Vector3d sp = input.spacing_mm();
  if (!(spacing_mm > 0) || sp.minCoeff() >= 0.9 * spacing_mm) return input;
  Grid g;
  Eigen::Matrix4d scale = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) {
    const double ratio = sp[a] < 0.9 * spacing_mm ? spacing_mm / sp[a] : 1.0;
    g.dim[std::size_t(a)] =
        std::max<std::int64_t>(1, std::int64_t(std::ceil(double(input.dim[std::size_t(a)]) / ratio - 1e-6)));
    scale(a, a) = ratio;
    scale(a, 3) = 0.5 * (ratio - 1.0);  // the first working voxel starts where the input's first one does
  }
  g.vox2ras = RasMatrix(input.vox2ras.m * scale);
  return g;
}

bool is_identity(const Grid& input, const Grid& work) { return work.same_as(input, 1e-6); }

Image to_work(const Image& image, const Grid& work) {
  check_work(image.grid, work);
  if (is_identity(image.grid, work)) return image;
  const Eigen::Vector3d r = ratios(image.grid, work);
  std::array<std::int64_t, 3> d = image.grid.dim;
  std::vector<float> data = image.data;
  for (int a = 0; a < 3; ++a)
    if (coarsened(r[a])) data = apply_axis(data, d, a, box_taps(d[std::size_t(a)], work.dim[std::size_t(a)], r[a]));
  Image out;
  out.grid = work;
  out.data = std::move(data);
  return out;
}

Image fraction_to_work(const Mask& mask, const Grid& work) { return to_work(to_image(mask), work); }

Mask mask_to_work(const Mask& mask, const Grid& work) {
  if (is_identity(mask.grid, work)) return mask;
  return threshold(fraction_to_work(mask, work), 0.5f);
}

Labels labels_to_work(const Labels& labels, const Grid& work) {
  if (is_identity(labels.grid, work)) return labels;
  const int top = labels.data.empty() ? 0 : *std::max_element(labels.data.begin(), labels.data.end());
  Labels out(work, 0);
  std::vector<float> best(work.voxels(), -1.0f);
  Mask one(labels.grid, 0);
  for (int l = 0; l <= top; ++l) {
    bool present = false;
    for (std::size_t i = 0; i < labels.data.size(); ++i) {
      one.data[i] = labels.data[i] == l ? 1 : 0;
      present = present || one.data[i];
    }
    if (!present) continue;
    const Image f = fraction_to_work(one, work);
    for (std::size_t i = 0; i < f.data.size(); ++i)
      if (f.data[i] > best[i]) {
        best[i] = f.data[i];
        out.data[i] = static_cast<std::uint8_t>(l);
      }
  }
  return out;
}

Image image_to_input(const Image& image, const Grid& input) {
  if (is_identity(input, image.grid)) return image;
  return resample_affine(image, input, Eigen::Matrix4d::Identity(), Interp::Linear, 0.0f);
}

Mask fraction_to_input(const Image& fraction, const Grid& input) {
  return threshold(image_to_input(fraction, input), 0.5f);
}

Mask mask_to_input(const Mask& mask, const Grid& input) {
  if (is_identity(input, mask.grid)) return mask;
  const Eigen::Vector3d r = ratios(input, mask.grid);
  Image smooth = to_image(mask);
  std::array<std::int64_t, 3> d = mask.grid.dim;
  for (int a = 0; a < 3; ++a) {
    if (!coarsened(r[a])) continue;
    // Binomial 1/4, 1/2, 1/4 along the axis, the edge voxel repeated.
    const std::int64_t n = d[std::size_t(a)];
    std::vector<Taps> taps(static_cast<std::size_t>(n));
    for (std::int64_t o = 0; o < n; ++o) {
      taps[std::size_t(o)].index = {std::max<std::int64_t>(0, o - 1), o, std::min<std::int64_t>(n - 1, o + 1)};
      taps[std::size_t(o)].weight = {0.25f, 0.5f, 0.25f};
    }
    smooth.data = apply_axis(smooth.data, d, a, taps);
  }
  return fraction_to_input(smooth, input);
}

Labels labels_to_input_nearest(const Labels& labels, const Grid& input) {
  if (is_identity(input, labels.grid)) return labels;
  const Image near = resample_affine(to_image(labels), input, Eigen::Matrix4d::Identity(), Interp::Nearest, 0.0f);
  Labels out(input, 0);
  for (std::size_t i = 0; i < near.data.size(); ++i) out.data[i] = static_cast<std::uint8_t>(std::lround(near.data[i]));
  return out;
}

}  // namespace tmsplan::workgrid
