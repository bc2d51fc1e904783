#pragma once
/// Quality-control pictures: three orthogonal slices (axial, coronal, sagittal) through a point,
/// sampled in world RAS at a fixed pixel size (so storage order never changes the picture), in
/// neurological convention (subject's right on the right of axial and coronal panels, anterior on
/// the right of the sagittal panel), with mask outlines, label colours, points and arrows.
///
/// Each panel shows exactly its stated field of view; panels are separated (and framed) by a white
/// gap of `gap_px()` pixels so that stacked or side-by-side panels never run into each other, and
/// each panel carries a 50 mm scale bar (bottom left, white on black) — or 20 mm when the field is
/// under 100 mm.
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
  QcFigure(const Image& t1, const std::array<double, 2>& window, const RasPoint& centre, double fov_mm,
           double pixel_mm);
  /// Slices through `slice_point`, each panel centred in its plane on `view_centre` (e.g. the
  /// head's centre, so that a target near the vertex still shows the whole head).
  QcFigure(const Image& t1, const std::array<double, 2>& window, const RasPoint& slice_point,
           const RasPoint& view_centre, double fov_mm, double pixel_mm);
  /// The grey window of a T1: its 1% and 99.5% quantiles.
  static std::array<double, 2> display_window(const Image& t1);
  void add_outline(const Mask& mask, Rgb colour);
  void add_labels(const Labels& labels, const std::vector<Rgb>& palette, double alpha = 0.45);
  void add_point(const RasPoint& p, Rgb colour, int radius_px = 3);
  void add_arrow(const RasPoint& from, const RasVector& direction_mm, Rgb colour);
  /// Writes the PNG atomically.
  void write_png(const std::string& path, bool force) const;
  int width() const { return 3 * size_ + 4 * gap_px(); }
  /// The white gap around and between panels, in pixels.
  static constexpr int gap_px() { return 6; }
  /// The panel's field of view in mm (each panel is square).
  double fov_mm() const { return fov_; }
  /// The RGB pixels (row-major, width x height x 3), e.g. to stack several figures in one PNG.
  const std::vector<std::uint8_t>& pixels() const { return rgb_; }
  int height() const { return size_ + 2 * gap_px(); }

 private:
  Eigen::Vector3d pixel_ras(int panel, int u, int v) const;
  bool project(int panel, const Eigen::Vector3d& p, double& u, double& v) const;
  void put(int panel, int u, int v, Rgb c, double alpha = 1.0);
  void line(int panel, double u0, double v0, double u1, double v1, Rgb c);

  void scale_bar(int panel);

  Eigen::Vector3d centre_;  // in-plane centre of every panel
  Eigen::Vector3d slice_;   // the point the three slices pass through
  double fov_, pixel_;
  int size_;
  std::vector<std::uint8_t> rgb_;  // width x height x 3
  const Grid grid_;
};

/// Writes an 8-bit RGB buffer (row-major) as PNG bytes.
std::string encode_png(const std::vector<std::uint8_t>& rgb, int width, int height);

}  // namespace tmsplan
