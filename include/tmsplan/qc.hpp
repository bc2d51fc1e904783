#pragma once
/// Quality-control pictures: three orthogonal slices (axial, coronal, sagittal) through a point,
/// sampled in world RAS at a fixed pixel size (so storage order never changes the picture), in
/// neurological convention (subject's right on the right of axial and coronal panels, anterior on
/// the right of the sagittal panel), with mask outlines, label colours, points and arrows.
#include <array>
#include <string>
#include <vector>

#include "tmsplan/image.hpp"

namespace tmsplan {

using Rgb = std::array<std::uint8_t, 3>;

class QcFigure {
public:
  /// `centre` in RAS mm; `fov_mm` square field of each panel; `pixel_mm` pixel size.
  QcFigure(const Image& t1, const RasPoint& centre, double fov_mm = 240.0, double pixel_mm = 1.0);
  /// Same, with the grey window given (see display_window), for several figures of one image.
  QcFigure(const Image& t1, const std::array<double, 2>& window, const RasPoint& centre, double fov_mm, double pixel_mm);
  /// The grey window of a T1: its 1% and 99.5% quantiles.
  static std::array<double, 2> display_window(const Image& t1);
  void add_outline(const Mask& mask, Rgb colour);
  void add_labels(const Labels& labels, const std::vector<Rgb>& palette, double alpha = 0.45);
  void add_point(const RasPoint& p, Rgb colour, int radius_px = 3);
  void add_arrow(const RasPoint& from, const RasVector& direction_mm, Rgb colour);
  /// Writes the PNG atomically.
  void write_png(const std::string& path, bool force) const;
  int width() const { return 3 * size_; }
  /// The RGB pixels (row-major, width x height x 3), e.g. to stack several figures in one PNG.
  const std::vector<std::uint8_t>& pixels() const { return rgb_; }
  int height() const { return size_; }

private:
  Eigen::Vector3d pixel_ras(int panel, int u, int v) const;
  bool project(int panel, const Eigen::Vector3d& p, double& u, double& v) const;
  void put(int panel, int u, int v, Rgb c, double alpha = 1.0);
  void line(int panel, double u0, double v0, double u1, double v1, Rgb c);

  Eigen::Vector3d centre_;
  double fov_, pixel_;
  int size_;
  std::vector<std::uint8_t> rgb_;  // width x height x 3
  const Grid grid_;
};

/// Writes an 8-bit RGB buffer (row-major) as PNG bytes.
std::string encode_png(const std::vector<std::uint8_t>& rgb, int width, int height);

}  // namespace tmsplan
