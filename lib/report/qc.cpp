#include "tmsplan/qc.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {

std::array<double, 2> QcFigure::display_window(const Image& t1) {
  // quantile(t1, 0.01) and quantile(t1, 0.995) from one copy (select_ranks: the second selection
  // runs on the part below the first, which holds the same order statistic).
  if (t1.data.empty()) throw Error("quantile of an empty set");
  std::vector<float> v(t1.data);
  const auto at = [&](double q) { return static_cast<std::size_t>(q * double(v.size() - 1)); };
  const std::size_t lo = at(0.01), hi = at(0.995);
  select_ranks(v, {lo, hi});
  return {double(v[lo]), double(v[hi])};
}

QcFigure::QcFigure(const Image& t1, const RasPoint& centre, double fov_mm, double pixel_mm)
    : QcFigure(t1, display_window(t1), centre, fov_mm, pixel_mm) {}

QcFigure::QcFigure(const Image& t1, const std::array<double, 2>& window, const RasPoint& centre, double fov_mm,
                   double pixel_mm)
    : QcFigure(t1, window, centre, centre, fov_mm, pixel_mm) {}

QcFigure::QcFigure(const Image& t1, const std::array<double, 2>& window, const RasPoint& slice_point,
                   const RasPoint& view_centre, double fov_mm, double pixel_mm)
    : centre_(view_centre.v), slice_(slice_point.v), fov_(fov_mm), pixel_(pixel_mm),
      size_(static_cast<int>(std::lround(fov_mm / pixel_mm))), grid_(t1.grid) {
  if (!(fov_mm > 0) || !(pixel_mm > 0) || size_ < 8 || size_ > 4096)
    throw Error("QC figure: bad field of view or pixel size");
  // White everywhere: the gaps between and around the panels stay white.
  rgb_.assign(std::size_t(width()) * std::size_t(height()) * 3, 255);
  const double lo = window[0], hi = window[1];
  const Eigen::Matrix4d ras2vox = t1.grid.vox2ras.m.inverse();
  for (int panel = 0; panel < 3; ++panel)
    for (int v = 0; v < size_; ++v)
      for (int u = 0; u < size_; ++u) {
        const Eigen::Vector3d p = pixel_ras(panel, u, v);
        const Eigen::Vector3d ijk = ras2vox.topLeftCorner<3, 3>() * p + ras2vox.topRightCorner<3, 1>();
        const double value = sample(t1, ijk, Interp::Linear, static_cast<float>(lo));
        const auto g =
            static_cast<std::uint8_t>(std::clamp((value - lo) / std::max(1e-9, hi - lo) * 255.0, 0.0, 255.0));
        put(panel, u, v, {g, g, g});
      }
  for (int panel = 0; panel < 3; ++panel) scale_bar(panel);
}

void QcFigure::scale_bar(int panel) {
  const double mm = fov_ < 100.0 ? 20.0 : 50.0;
  const int len = static_cast<int>(std::lround(mm / pixel_));
  const int x0 = std::max(4, size_ / 40), y0 = size_ - std::max(6, size_ / 30);
  for (int dv = -3; dv <= 3; ++dv)  // black under-stroke, then the white bar
    for (int u = x0 - 2; u <= x0 + len + 2; ++u) put(panel, u, y0 + dv, {0, 0, 0});
  for (int dv = -1; dv <= 1; ++dv)
    for (int u = x0; u <= x0 + len; ++u) put(panel, u, y0 + dv, {255, 255, 255});
}

Eigen::Vector3d QcFigure::pixel_ras(int panel, int u, int v) const {
  const double a = -fov_ / 2 + (u + 0.5) * pixel_, b = fov_ / 2 - (v + 0.5) * pixel_;
  switch (panel) {
  case 0:
    return {centre_[0] + a, centre_[1] + b, slice_[2]};  // axial: R right, A up
  case 1:
    return {centre_[0] + a, slice_[1], centre_[2] + b};  // coronal: R right, S up
  default:
    return {slice_[0], centre_[1] + a, centre_[2] + b};  // sagittal: A right, S up
  }
}

bool QcFigure::project(int panel, const Eigen::Vector3d& p, double& u, double& v) const {
  const Eigen::Vector3d d = p - centre_;
  double a = 0, b = 0;
  switch (panel) {
  case 0:
    a = d[0];
    b = d[1];
    break;
  case 1:
    a = d[0];
    b = d[2];
    break;
  default:
    a = d[1];
    b = d[2];
    break;
  }
  u = (a + fov_ / 2) / pixel_ - 0.5;
  v = (fov_ / 2 - b) / pixel_ - 0.5;
  return u >= 0 && v >= 0 && u < size_ && v < size_;
}

void QcFigure::put(int panel, int u, int v, Rgb c, double alpha) {
  if (u < 0 || v < 0 || u >= size_ || v >= size_) return;
  const int g = gap_px();
  const std::size_t x = std::size_t(g + panel * (size_ + g) + u), y = std::size_t(g + v);
  const std::size_t idx = (y * std::size_t(width()) + x) * 3;
  for (int ch = 0; ch < 3; ++ch)
    rgb_[idx + std::size_t(ch)] =
        static_cast<std::uint8_t>(std::lround((1 - alpha) * rgb_[idx + std::size_t(ch)] + alpha * c[std::size_t(ch)]));
}

void QcFigure::add_outline(const Mask& mask, Rgb colour) {
  const Eigen::Matrix4d ras2vox = mask.grid.vox2ras.m.inverse();
  auto inside = [&](int panel, int u, int v) {
    const Eigen::Vector3d ijk = ras2vox.topLeftCorner<3, 3>() * pixel_ras(panel, u, v) + ras2vox.topRightCorner<3, 1>();
    const auto i = std::lround(ijk[0]), j = std::lround(ijk[1]), k = std::lround(ijk[2]);
    return mask.grid.inside(i, j, k) && mask(i, j, k) != 0;
  };
  for (int panel = 0; panel < 3; ++panel) {
    std::vector<char> in(std::size_t(size_ * size_));
    for (int v = 0; v < size_; ++v)
      for (int u = 0; u < size_; ++u) in[std::size_t(v * size_ + u)] = inside(panel, u, v);
    for (int v = 1; v < size_ - 1; ++v)
      for (int u = 1; u < size_ - 1; ++u) {
        const auto at = [&](int x, int y) { return in[std::size_t(y * size_ + x)]; };
        if (at(u, v) && (!at(u - 1, v) || !at(u + 1, v) || !at(u, v - 1) || !at(u, v + 1))) put(panel, u, v, colour);
      }
  }
}

void QcFigure::add_labels(const Labels& labels, const std::vector<Rgb>& palette, double alpha) {
  const Eigen::Matrix4d ras2vox = labels.grid.vox2ras.m.inverse();
  for (int panel = 0; panel < 3; ++panel)
    for (int v = 0; v < size_; ++v)
      for (int u = 0; u < size_; ++u) {
        const Eigen::Vector3d ijk =
            ras2vox.topLeftCorner<3, 3>() * pixel_ras(panel, u, v) + ras2vox.topRightCorner<3, 1>();
        const auto i = std::lround(ijk[0]), j = std::lround(ijk[1]), k = std::lround(ijk[2]);
        if (!labels.grid.inside(i, j, k)) continue;
        const auto l = labels(i, j, k);
        if (l > 0 && l < palette.size()) put(panel, u, v, palette[l], alpha);
      }
}

void QcFigure::add_point(const RasPoint& p, Rgb colour, int radius_px) {
  for (int panel = 0; panel < 3; ++panel) {
    double u, v;
    if (!project(panel, p.v, u, v)) continue;
    for (int dv = -radius_px; dv <= radius_px; ++dv)
      for (int du = -radius_px; du <= radius_px; ++du)
        if (du * du + dv * dv <= radius_px * radius_px)
          put(panel, int(std::lround(u)) + du, int(std::lround(v)) + dv, colour);
  }
}

void QcFigure::line(int panel, double u0, double v0, double u1, double v1, Rgb c) {
  const int steps = static_cast<int>(std::ceil(std::max(std::abs(u1 - u0), std::abs(v1 - v0)))) + 1;
  for (int s = 0; s <= steps; ++s) {
    const double t = double(s) / steps;
    const int u = int(std::lround(u0 + t * (u1 - u0))), v = int(std::lround(v0 + t * (v1 - v0)));
    put(panel, u, v, c);
    put(panel, u + 1, v, c);
    put(panel, u, v + 1, c);
  }
}

void QcFigure::add_arrow(const RasPoint& from, const RasVector& direction_mm, Rgb colour) {
  for (int panel = 0; panel < 3; ++panel) {
    double u0, v0, u1, v1;
    project(panel, from.v, u0, v0);
    project(panel, from.v + direction_mm.v, u1, v1);
    line(panel, u0, v0, u1, v1, colour);
    const double du = u1 - u0, dv = v1 - v0, len = std::hypot(du, dv);
    if (len < 2) continue;
    const double hx = du / len * 6, hy = dv / len * 6;
    line(panel, u1, v1, u1 - hx - hy * 0.6, v1 - hy + hx * 0.6, colour);
    line(panel, u1, v1, u1 - hx + hy * 0.6, v1 - hy - hx * 0.6, colour);
  }
}

namespace {
void append_bytes(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}
void flush_nothing(png_structp) {}
}  // namespace

std::string encode_png(const std::vector<std::uint8_t>& rgb, int width, int height) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) throw Error("cannot start the PNG encoder");
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    throw Error("PNG encoding failed");
  }
  png_set_write_fn(png, &out, append_bytes, flush_nothing);
  png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y)
    png_write_row(png, const_cast<png_bytep>(rgb.data() + std::size_t(y) * std::size_t(width) * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

void QcFigure::write_png(const std::string& path, bool force) const {
  write_file_atomic(path, encode_png(rgb_, width(), height()), force);
}

}  // namespace tmsplan
