// Scalp rendering for the report: an orthographic software ray-caster on the smoothed head mask,
// seen from outside along the scalp normal, with the figure-8 coil, its handle, the scalp entry
// and the cortical target drawn on top.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/report.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::report {

namespace {

// Mask smoothing before rendering: removes the voxel staircase from the shading.
constexpr double kSmoothSigmaMm = 1.6;
constexpr double kStepMm = 0.75;

using Rgb3 = std::array<double, 3>;

struct Canvas {
  int w, h;
  std::vector<std::uint8_t>& rgb;
  void put(int u, int v, const Rgb3& c, double alpha = 1.0) {
    if (u < 0 || v < 0 || u >= w || v >= h) return;
    const std::size_t i = (std::size_t(v) * std::size_t(w) + std::size_t(u)) * 3;
    for (int k = 0; k < 3; ++k)
      rgb[i + std::size_t(k)] = static_cast<std::uint8_t>(
          std::lround(std::clamp((1 - alpha) * rgb[i + std::size_t(k)] + alpha * c[std::size_t(k)], 0.0, 255.0)));
  }
  void disc(double u, double v, double r, const Rgb3& c) {
    const int r0 = int(std::ceil(r));
    for (int dv = -r0; dv <= r0; ++dv)
      for (int du = -r0; du <= r0; ++du)
        if (du * du + dv * dv <= r * r) put(int(std::lround(u)) + du, int(std::lround(v)) + dv, c);
  }
  void line(double u0, double v0, double u1, double v1, double width, const Rgb3& c) {
    const int steps = int(std::ceil(std::hypot(u1 - u0, v1 - v0))) + 1;
    for (int s = 0; s <= steps; ++s) {
      const double t = double(s) / steps;
      disc(u0 + t * (u1 - u0), v0 + t * (v1 - v0), width / 2, c);
    }
  }
};

bool ray_box(const Eigen::Vector3d& o, const Eigen::Vector3d& d, const Eigen::Vector3d& lo, const Eigen::Vector3d& hi,
             double& t0, double& t1) {
  t0 = -1e30;
  t1 = 1e30;
  for (int a = 0; a < 3; ++a) {
    if (std::abs(d[a]) < 1e-12) {
      if (o[a] < lo[a] || o[a] > hi[a]) return false;
      continue;
    }
    double ta = (lo[a] - o[a]) / d[a], tb = (hi[a] - o[a]) / d[a];
    if (ta > tb) std::swap(ta, tb);
    t0 = std::max(t0, ta);
    t1 = std::min(t1, tb);
  }
  return t1 > t0;
}

}  // namespace

std::string direction_name(const Eigen::Vector3d& d) {
  const Eigen::Vector3d n = d.normalized();
  static const char* pos[3] = {"right", "anterior", "superior"};
  static const char* neg[3] = {"left", "posterior", "inferior"};
  std::array<int, 3> order{0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int a, int b) { return std::abs(n[a]) > std::abs(n[b]); });
  std::string out;
  for (int a : order) {
    if (std::abs(n[a]) < 0.38 && !out.empty()) continue;
    if (!out.empty()) out += "-";
    out += n[a] >= 0 ? pos[a] : neg[a];
  }
  return out;
}

HeadSurface::HeadSurface(const Mask& head) {
  if (count(head) == 0) throw Error("the head mask is empty: nothing to render");
  const Crop box = bounding_crop(head, 6);
  const Mask small = crop(head, box);
  Image f(small.grid);
  for (std::size_t i = 0; i < f.data.size(); ++i) f.data[i] = small.data[i] ? 1.0f : 0.0f;
  density_ = gaussian_smooth(f, kSmoothSigmaMm);
  ras2vox_ = density_.grid.vox2ras.m.inverse();
  box_lo_ = Eigen::Vector3d::Constant(1e30);
  box_hi_ = Eigen::Vector3d::Constant(-1e30);
  for (int c = 0; c < 8; ++c) {
    const auto& dim = density_.grid.dim;
    const Eigen::Vector3d p =
        density_.grid.ras((c & 1) ? dim[0] - 1 : 0, (c & 2) ? dim[1] - 1 : 0, (c & 4) ? dim[2] - 1 : 0).v;
    box_lo_ = box_lo_.cwiseMin(p);
    box_hi_ = box_hi_.cwiseMax(p);
  }
  build_skip_table();
}

// A trilinear sample whose lower corner lies in block b reads voxels of [b B, b B + B] along each
// axis; one voxel of slack on either side covers a corner index off by one (rounding of the
// position), and blocks b - 1 .. b + 1 cover that range. Such a sample is a convex combination of those voxels: below
// their maximum (up to rounding, hence the margin under 0.5).
void HeadSurface::build_skip_table() {
  static_assert(kBlock >= 2, "the 3 x 3 x 3 blocks must cover one voxel of slack");
  const auto& dim = density_.grid.dim;
  for (int a = 0; a < 3; ++a) blocks_[std::size_t(a)] = (dim[std::size_t(a)] + kBlock - 1) / kBlock;
  const std::size_t nb = std::size_t(blocks_[0] * blocks_[1] * blocks_[2]);
  constexpr std::int32_t kFar = std::numeric_limits<std::int32_t>::max() / 2;
  block_distance_.assign(nb, kFar);
  // Each block's own maximum (every voxel read once), then the largest over the 3 x 3 x 3 blocks
  // around it: those cover the block's voxels with one voxel of slack on either side (B >= 2).
  std::vector<float> own(nb, -std::numeric_limits<float>::infinity());
  for (std::int64_t k = 0; k < dim[2]; ++k)
    for (std::int64_t j = 0; j < dim[1]; ++j) {
      const float* row = density_.data.data() + density_.grid.index(0, j, k);
      const std::size_t brow = std::size_t(blocks_[0] * (j / kBlock + blocks_[1] * (k / kBlock)));
      for (std::int64_t i = 0; i < dim[0]; ++i) {
        float& m = own[brow + std::size_t(i / kBlock)];
        if (!(row[i] <= m)) m = std::isnan(row[i]) ? std::numeric_limits<float>::infinity() : row[i];
      }
    }
  std::vector<std::size_t> queue;
  for (std::int64_t bk = 0; bk < blocks_[2]; ++bk)
    for (std::int64_t bj = 0; bj < blocks_[1]; ++bj)
      for (std::int64_t bi = 0; bi < blocks_[0]; ++bi) {
        float m = -std::numeric_limits<float>::infinity();
        for (std::int64_t k = std::max<std::int64_t>(0, bk - 1); k <= std::min(blocks_[2] - 1, bk + 1); ++k)
          for (std::int64_t j = std::max<std::int64_t>(0, bj - 1); j <= std::min(blocks_[1] - 1, bj + 1); ++j)
            for (std::int64_t i = std::max<std::int64_t>(0, bi - 1); i <= std::min(blocks_[0] - 1, bi + 1); ++i)
              m = std::max(m, own[std::size_t(i + blocks_[0] * (j + blocks_[1] * k))]);
        if (!(m < 0.4999f)) {
          const std::size_t q = std::size_t(bi + blocks_[0] * (bj + blocks_[1] * bk));
          block_distance_[q] = 0;
          queue.push_back(q);
        }
      }
  // Multi-source breadth-first search over the 26 neighbours: chessboard distance in blocks.
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const std::size_t q = queue[head];
    const std::int64_t bi = std::int64_t(q) % blocks_[0], bj = (std::int64_t(q) / blocks_[0]) % blocks_[1],
                       bk = std::int64_t(q) / (blocks_[0] * blocks_[1]);
    for (std::int64_t dk = -1; dk <= 1; ++dk)
      for (std::int64_t dj = -1; dj <= 1; ++dj)
        for (std::int64_t di = -1; di <= 1; ++di) {
          const std::int64_t i = bi + di, j = bj + dj, k = bk + dk;
          if (i < 0 || j < 0 || k < 0 || i >= blocks_[0] || j >= blocks_[1] || k >= blocks_[2]) continue;
          const std::size_t r = std::size_t(i + blocks_[0] * (j + blocks_[1] * k));
          if (block_distance_[r] != kFar) continue;
          block_distance_[r] = block_distance_[q] + 1;
          queue.push_back(r);
        }
  }
}

// The sample at ijk and the next n - 1 ones along the ray (each step_vox[a] = 1 / inverse_step[a]
// voxels further along axis a, at most) are below the level. After m steps the sampler's lower corner along axis a
// lies within floor(m step_vox[a]) + 1 of this one's corner c (the +1: flooring), so within D - 1
// blocks of c's block b when that offset is at most min(D B - 1 - r, (D - 1) B + r), r = c - b B
// and D the distance of b to a block that may reach the level; those blocks are all below it.
// A position beyond the grid is clamped here, as by the sampler (1-Lipschitz).
int HeadSurface::empty_steps(const Eigen::Vector3d& ijk, const Eigen::Vector3d& inverse_step) const {
  if (!ijk.allFinite()) return 0;
  std::int64_t c[3], b[3];
  for (int a = 0; a < 3; ++a) {
    const std::int64_t last = density_.grid.dim[std::size_t(a)] - 1;
    c[a] = std::min<std::int64_t>(static_cast<std::int64_t>(std::clamp(ijk[a], 0.0, double(last))), last);
    b[a] = c[a] / kBlock;
  }
  const std::int64_t D = block_distance_[std::size_t(b[0] + blocks_[0] * (b[1] + blocks_[1] * b[2]))];
  if (D <= 0) return 0;
  double m = 1e6;
  for (int a = 0; a < 3; ++a) {
    const std::int64_t r = c[a] - b[a] * kBlock;
    const double limit = double(std::min(D * kBlock - 1 - r, (D - 1) * kBlock + r));
    if (limit < 1) return 1;
    if (inverse_step[a] > 0) m = std::min(m, std::floor((limit - 1) * inverse_step[a]));
  }
  return 1 + static_cast<int>(m);
}

namespace {

// The picture plane of a rendering: pixel (u, v) of a point, from the view's centre and axes.
struct View {
  Eigen::Vector3d centre, right, up, d;  // d: the viewing direction
  double fov = 0, px = 0;
  int W = 0, H = 0;
  void project(const Eigen::Vector3d& p, double& u, double& v) const {
    u = ((p - centre).dot(right) + fov / 2) / px - 0.5;
    v = (fov / 2 - (p - centre).dot(up)) / px - 0.5;
  }
};

// Per pixel, a ray depth t before which every sample of the ray lies in a block that the skip
// table marks as below the level (distance > 0, where empty_steps says "skip"): the blocks at
// distance 0, each enlarged a little, projected along the view (orthographic, so a block covers a
// rectangle of rays from its nearest corner's depth on); +inf where none projects. Rays then start
// their march there, along the same sequence of t, and meet the same samples from it on. A line
// enters the distance-0 blocks from one of the 26 neighbours of its first such block, or at the
// grid's border, so the blocks with all 26 neighbours at distance 0 need not be projected.
bool inner_block(const std::array<std::int64_t, 3>& blocks, const std::vector<std::int32_t>& distance, std::int64_t bi,
                 std::int64_t bj, std::int64_t bk) {
  if (bi == 0 || bj == 0 || bk == 0 || bi + 1 == blocks[0] || bj + 1 == blocks[1] || bk + 1 == blocks[2]) return false;
  for (std::int64_t k = bk - 1; k <= bk + 1; ++k)
    for (std::int64_t j = bj - 1; j <= bj + 1; ++j)
      for (std::int64_t i = bi - 1; i <= bi + 1; ++i)
        if (distance[std::size_t(i + blocks[0] * (j + blocks[1] * k))] != 0) return false;
  return true;
}

std::vector<double> first_depths(const Grid& grid, const std::array<std::int64_t, 3>& blocks, std::int64_t block,
                                 const std::vector<std::int32_t>& distance, const View& view, double far) {
  constexpr double kMarginVox = 0.01, kMarginMm = 1e-3, kSlackPx = 0.01;
  const Eigen::Matrix3d lin = grid.vox2ras.m.topLeftCorner<3, 3>();
  const Eigen::Vector3d rel = grid.vox2ras.m.topRightCorner<3, 1>() - view.centre;
  const std::array<Eigen::Vector3d, 3> axes{view.right, view.up, view.d};
  // Per view axis: the coordinate of a block's lower corner (linear in its voxel position) and the
  // span of its 8 corners around it.
  std::array<Eigen::Vector3d, 3> gain;
  std::array<double, 3> offset, lo, hi;
  const double size = double(block) + 2 * kMarginVox;
  for (int q = 0; q < 3; ++q) {
    gain[std::size_t(q)] = lin.transpose() * axes[std::size_t(q)];
    offset[std::size_t(q)] = rel.dot(axes[std::size_t(q)]) - kMarginVox * gain[std::size_t(q)].sum();
    lo[std::size_t(q)] = hi[std::size_t(q)] = 0;
    for (int a = 0; a < 3; ++a) {
      const double e = gain[std::size_t(q)][a] * size;
      (e < 0 ? lo : hi)[std::size_t(q)] += e;
    }
  }
  std::vector<double> start(std::size_t(view.W) * std::size_t(view.H), std::numeric_limits<double>::infinity());
  const double half = view.fov / 2;
  for (std::int64_t bk = 0; bk < blocks[2]; ++bk)
    for (std::int64_t bj = 0; bj < blocks[1]; ++bj)
      for (std::int64_t bi = 0; bi < blocks[0]; ++bi) {
        if (distance[std::size_t(bi + blocks[0] * (bj + blocks[1] * bk))] != 0 ||
            inner_block(blocks, distance, bi, bj, bk))
          continue;
        const Eigen::Vector3d corner(double(bi * block), double(bj * block), double(bk * block));
        std::array<double, 3> c;
        for (int q = 0; q < 3; ++q) c[std::size_t(q)] = gain[std::size_t(q)].dot(corner) + offset[std::size_t(q)];
        // The rays a = -fov/2 + (u + 0.5) px, b = fov/2 - (v + 0.5) px through the block's extent
        // (kSlackPx: rounding of the ray's position).
        const int u0 = std::max(0, int(std::ceil((c[0] + lo[0] + half) / view.px - 0.5 - kSlackPx)));
        const int u1 = std::min(view.W - 1, int(std::floor((c[0] + hi[0] + half) / view.px - 0.5 + kSlackPx)));
        const int v0 = std::max(0, int(std::ceil((half - c[1] - hi[1]) / view.px - 0.5 - kSlackPx)));
        const int v1 = std::min(view.H - 1, int(std::floor((half - c[1] - lo[1]) / view.px - 0.5 + kSlackPx)));
        const double t = c[2] + lo[2] + far - kMarginMm;
        for (int v = v0; v <= v1; ++v)
          for (int u = u0; u <= u1; ++u) {
            double& s = start[std::size_t(v) * std::size_t(view.W) + std::size_t(u)];
            s = std::min(s, t);
          }
      }
  return start;
}

// Coil wings: each pixel's ray meets the coil plane; fill the windings' annuli translucently,
// then outline them.
void draw_coil_wings(Canvas& canvas, const CoilDrawing& coil, const View& view) {
  const Eigen::Vector3d &centre = view.centre, &right = view.right, &up = view.up, &d = view.d;
  const double fov = view.fov, px = view.px;
  const int W = view.W, H = view.H;
  const Eigen::Vector3d cx = coil.pose.m.block<3, 1>(0, 0), cy = coil.pose.m.block<3, 1>(0, 1),
                        cz = coil.pose.m.block<3, 1>(0, 2);
  const double dz = d.dot(cz);
  const Rgb3 coil_colour{60, 150, 255}, edge_colour{20, 70, 200};
  if (std::abs(dz) > 0.2) {
    const double ri = coil.wing_inner_radius_mm, ro = coil.wing_outer_radius_mm, off = coil.wing_offset_mm;
    for (int v = 0; v < H; ++v)
      for (int u = 0; u < W; ++u) {
        const double a = -fov / 2 + (u + 0.5) * px, b = fov / 2 - (v + 0.5) * px;
        const Eigen::Vector3d q = centre + a * right + b * up;
        const Eigen::Vector3d on = q - ((q - centre).dot(cz) / dz) * d;
        const double x = (on - centre).dot(cx), y = (on - centre).dot(cy);
        for (double s : {-1.0, 1.0}) {
          const double r = std::hypot(x - s * off, y);
          if (r >= ri && r <= ro) canvas.put(u, v, coil_colour, 0.38);
        }
      }
  }
  for (double s : {-1.0, 1.0})
    for (double r : {coil.wing_inner_radius_mm, coil.wing_outer_radius_mm}) {
      double pu = 0, pv = 0;
      for (int k = 0; k <= 180; ++k) {
        const double th = 2 * M_PI * k / 180.0;
        const Eigen::Vector3d p = centre + (s * coil.wing_offset_mm + r * std::cos(th)) * cx + r * std::sin(th) * cy;
        double u, v;
        view.project(p, u, v);
        if (k > 0) canvas.line(pu, pv, u, v, 2.0, edge_colour);
        pu = u;
        pv = v;
      }
    }
}

// Handle (with an arrow head), cortical target (red cross, below the skin), scalp entry (yellow
// dot), coil centre (white) and the scale bar.
void draw_marks(Canvas& canvas, const CoilDrawing& coil, const ScalpRenderOptions& options, const View& view) {
  const Eigen::Vector3d& centre = view.centre;
  const double px = view.px;
  const int H = view.H;
  const auto project = [&view](const Eigen::Vector3d& p, double& u, double& v) { view.project(p, u, v); };
  // Handle: from the coil centre along the handle direction, with an arrow head.
  const Rgb3 handle_colour{255, 140, 0};
  double u0, v0, u1, v1;
  project(centre, u0, v0);
  project(centre + coil.handle_length_mm * coil.handle_direction.normalized(), u1, v1);
  if (options.show_handle) canvas.line(u0, v0, u1, v1, 6.0, handle_colour);
  const double du = u1 - u0, dv = v1 - v0, len = std::hypot(du, dv);
  if (options.show_handle && len > 4) {
    const double hx = du / len * 16, hy = dv / len * 16;
    canvas.line(u1, v1, u1 - hx - hy * 0.6, v1 - hy + hx * 0.6, 5.0, handle_colour);
    canvas.line(u1, v1, u1 - hx + hy * 0.6, v1 - hy - hx * 0.6, 5.0, handle_colour);
  }
  // Cortical target (red cross, below the skin) and scalp entry (yellow dot), coil centre (white).
  double tu, tv;
  project(coil.cortical_point, tu, tv);
  canvas.line(tu - 8, tv - 8, tu + 8, tv + 8, 3.0, {230, 20, 20});
  canvas.line(tu - 8, tv + 8, tu + 8, tv - 8, 3.0, {230, 20, 20});
  if (options.show_entry) {
    project(coil.scalp_point, tu, tv);
    canvas.disc(tu, tv, 5.0, {40, 40, 40});
    canvas.disc(tu, tv, 4.0, {255, 230, 0});
  }
  project(centre, tu, tv);
  canvas.disc(tu, tv, 2.5, {255, 255, 255});
  // Scale bar, bottom left.
  const double bar_px = options.scale_bar_mm / px;
  canvas.line(15, H - 15, 15 + bar_px, H - 15, 3.0, {255, 255, 255});
  canvas.line(15, H - 22, 15, H - 8, 2.0, {255, 255, 255});
  canvas.line(15 + bar_px, H - 22, 15 + bar_px, H - 8, 2.0, {255, 255, 255});
}

}  // namespace

ScalpRendering HeadSurface::render(const CoilDrawing& coil, const ScalpRenderOptions& options) const {
  if (!(options.fov_mm > 0) || !(options.pixel_mm > 0) || options.fov_mm / options.pixel_mm > 4096)
    throw Error("scalp rendering: bad field of view or pixel size");
  const Eigen::Vector3d n = coil.view_normal.normalized();
  if (!n.allFinite()) throw Error("scalp rendering: the view normal is not a direction");
  const Eigen::Vector3d d = -n;
  // Image up: superior projected on the view plane; anterior when looking down from the vertex.
  Eigen::Vector3d up = Eigen::Vector3d::UnitZ() - n.z() * n;
  if (up.norm() < 0.35) up = Eigen::Vector3d::UnitY() - n.y() * n;
  up.normalize();
  const Eigen::Vector3d right = up.cross(n);  // right x up = n: the viewer looks along -n.
  const Eigen::Vector3d centre = coil.pose.m.topRightCorner<3, 1>();

  ScalpRendering out;
  out.width = out.height = int(std::lround(options.fov_mm / options.pixel_mm));
  out.right = right;
  out.up = up;
  out.orientation = "image up: " + direction_name(up) + "; image right: " + direction_name(right) +
                    "; seen from outside, looking " + direction_name(d);
  out.rgb.assign(std::size_t(out.width) * std::size_t(out.height) * 3, 0);
  const int W = out.width, H = out.height;
  const double px = options.pixel_mm, fov = options.fov_mm;
  const double far = (box_hi_ - box_lo_).norm() + (centre - 0.5 * (box_hi_ + box_lo_)).norm() + 10;
  const Eigen::Vector3d light = (n + 0.45 * up - 0.3 * right).normalized();

  const auto value = [&](const Eigen::Vector3d& p) {
    const Eigen::Vector3d ijk = ras2vox_.topLeftCorner<3, 3>() * p + ras2vox_.topRightCorner<3, 1>();
    // sample(density_, ijk, Interp::Linear, 0.0f), its stencil and value inlined
    const Trilinear tri = trilinear_stencil(density_.grid.dim, ijk[0], ijk[1], ijk[2], Edge::Zero);
    return tri.inside ? double(static_cast<float>(trilinear_value(density_.data.data(), tri))) : 0.0;
  };
  // Voxels moved per step along any axis (an upper bound, with slack for rounding).
  const Eigen::Vector3d step_vox =
      (kStepMm * (ras2vox_.topLeftCorner<3, 3>() * d).cwiseAbs() * (1 + 1e-9)).array() + 1e-9;
  // Its inverse, rounded down (a product by it never exceeds the quotient): 0 for no motion.
  Eigen::Vector3d inverse_step;
  for (int a = 0; a < 3; ++a) inverse_step[a] = step_vox[a] > 0 ? (1 - 1e-9) / step_vox[a] : 0.0;
  std::vector<char> hits(std::size_t(W) * std::size_t(H), 0);
  const View view{centre, right, up, d, fov, px, W, H};
  const std::vector<double> first = first_depths(density_.grid, blocks_, kBlock, block_distance_, view, far);
  parallel_for(H, [&](std::int64_t v0, std::int64_t v1) {
    for (std::int64_t v = v0; v < v1; ++v)
      for (int u = 0; u < W; ++u) {
        const double a = -fov / 2 + (u + 0.5) * px, b = fov / 2 - (double(v) + 0.5) * px;
        const Eigen::Vector3d o = centre + a * right + b * up + far * n;
        std::array<double, 3> colour{28, 32, 40};
        double t0, t1;
        if (ray_box(o, d, box_lo_, box_hi_, t0, t1)) {
          double prev = std::max(t0, 0.0), t = prev;
          // March in steps of kStepMm; samples known to be below the level (empty space) are
          // passed without sampling, along the very same sequence of t.
          for (const double s = first[std::size_t(v) * std::size_t(W) + std::size_t(u)]; t < s && t <= t1; t += kStepMm)
            prev = t;
          for (; t <= t1; t += kStepMm) {
            const Eigen::Vector3d at = o + t * d;
            if (int n_empty =
                    empty_steps(ras2vox_.topLeftCorner<3, 3>() * at + ras2vox_.topRightCorner<3, 1>(), inverse_step);
                n_empty > 0) {
              prev = t;
              while (--n_empty > 0 && t + kStepMm <= t1) {
                t += kStepMm;
                prev = t;
              }
              continue;
            }
            if (value(at) < 0.5) {
              prev = t;
              continue;
            }
            double lo = prev, hi = t;  // bisection to the 0.5 level
            for (int it = 0; it < 8; ++it) {
              const double mid = 0.5 * (lo + hi);
              (value(o + mid * d) >= 0.5 ? hi : lo) = mid;
            }
            const Eigen::Vector3d p = o + hi * d;
            Eigen::Vector3d g;
            for (int ax = 0; ax < 3; ++ax) {
              Eigen::Vector3d e = Eigen::Vector3d::Zero();
              e[ax] = 1.0;
              g[ax] = value(p - e) - value(p + e);  // outward: density falls outwards
            }
            const Eigen::Vector3d normal = g.norm() > 1e-9 ? Eigen::Vector3d(g.normalized()) : n;
            const double lambert = std::max(0.0, normal.dot(light));
            const double depth_mm = (centre - p).dot(n);  // > 0: further from the viewer than the coil
            const double fade = std::clamp(1.0 - depth_mm / 140.0, 0.3, 1.0);
            const double shade = (0.22 + 0.78 * lambert) * fade;
            const auto& c = options.surface_rgb;
            colour = {c[0] * shade, c[1] * shade, c[2] * shade};
            hits[std::size_t(v) * std::size_t(W) + std::size_t(u)] = 1;
            break;
          }
        }
        const std::size_t i = (std::size_t(v) * std::size_t(W) + std::size_t(u)) * 3;
        for (int k = 0; k < 3; ++k)
          out.rgb[i + std::size_t(k)] = static_cast<std::uint8_t>(std::lround(colour[std::size_t(k)]));
      }
  });
  out.hit_scalp = std::any_of(hits.begin(), hits.end(), [](char c) { return c != 0; });

  Canvas canvas{W, H, out.rgb};
  draw_coil_wings(canvas, coil, view);
  draw_marks(canvas, coil, options, view);
  return out;
}

}  // namespace tmsplan::report
