// Affine registration subject -> template: robust intensity clipping, head-top centring, a coarse
// grid of tilts, then Levenberg-Marquardt on normalised cross-correlation over a Gaussian pyramid
// (rigid, then 12 parameters). See docs/registration.md.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "pyramid.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/progress.hpp"
#include "tmsplan/registration.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan {
namespace {
using namespace registration_detail;

using Mat12 = Eigen::Matrix<double, 12, 12>;
using Vec12 = Eigen::Matrix<double, 12, 1>;

constexpr double kHeadRadiusMm = 80.0;   // converts rotations / matrix steps to mm at the scalp
constexpr double kSlabDepthMm = 120.0;   // head-top slab used for centring (ignores the neck)
constexpr double kMarginMm = 12.0;       // background margin around the template head sampled
constexpr double kMinSimilarity = 0.25;  // NCC below this after fitting: not a head T1 like the template
constexpr double kFocusMarginMm = 8.0;   // margin around the focus region (brain) at the finest level

enum class Stage { Rigid, Scaled, Affine };

// T(p) = A (p - c) + t maps a template point p to the subject; c is the template head centre.
struct Transform {
  Eigen::Matrix3d A = Eigen::Matrix3d::Identity();
  Eigen::Vector3d t = Eigen::Vector3d::Zero();
};

// Template sample points of one level, grouped by template slice (the unit of parallel work).
struct Samples {
  std::vector<Eigen::Vector3f> p;  // world position minus the centre c
  std::vector<float> f;            // template value
  std::vector<std::size_t> slice_begin;
};

struct Level {
  double spacing_mm = 0;
  Image subject;
  Eigen::Matrix3d ras2vox_lin;  // subject world -> voxel
  Eigen::Vector3d ras2vox_off;
  Samples templ;
};

struct Sums {
  double n = 0, sf = 0, sm = 0, sff = 0, smm = 0, sfm = 0;
  Mat12 gg = Mat12::Zero();
  Vec12 gf = Vec12::Zero(), gm = Vec12::Zero(), g1 = Vec12::Zero();
  void add(const Sums& o) {
    n += o.n, sf += o.sf, sm += o.sm, sff += o.sff, smm += o.smm, sfm += o.sfm;
    gg += o.gg, gf += o.gf, gm += o.gm, g1 += o.g1;
  }
};

struct Eval {
  double ncc = -2.0;
  Mat12 H = Mat12::Zero();     // Gauss-Newton matrix of the profile SSD (intensity map a m + b fitted)
  Vec12 grad = Vec12::Zero();  // minus its gradient: the descent direction
};

struct HeadStats {
  float threshold = 0;  // head vs background
  float clip = 0;       // robust maximum (bright fat and vessels clipped to it)
};

// Trilinear value at voxel position v (outside the grid: 0, gradient 0); gradient in voxel units.
inline float trilinear(const Image& im, const Eigen::Vector3d& v, Eigen::Vector3d* grad) {
  const Trilinear t = trilinear_stencil(im.grid.dim, v[0], v[1], v[2], Edge::Zero);
  double g[3];
  const double value = trilinear_value(im.data.data(), t, grad ? g : nullptr);
  if (grad) *grad = Eigen::Vector3d(g[0], g[1], g[2]);
  return static_cast<float>(value);
}

int parameter_count(Stage stage) { return stage == Stage::Rigid ? 6 : stage == Stage::Scaled ? 9 : 12; }
const char* stage_name(Stage stage) {
  return stage == Stage::Rigid ? "rigid" : stage == Stage::Scaled ? "scaled" : "affine";
}

// NCC of template samples against the subject under T and, when `system`, the Gauss-Newton
// system for the SSD between template and the best linear intensity map of the subject (whose
// minimum over T is the maximum of NCC^2). Per-slice partial sums, combined in slice order.
Eval evaluate(const Level& level, const Transform& T, Stage stage, bool system) {
  const Eigen::Matrix3d MA = level.ras2vox_lin * T.A;
  const Eigen::Vector3d mo = level.ras2vox_lin * T.t + level.ras2vox_off;
  const Eigen::Matrix3d MT = level.ras2vox_lin.transpose();
  const Samples& s = level.templ;
  const std::int64_t slices = std::int64_t(s.slice_begin.size()) - 1;
  const int np = parameter_count(stage);
  std::vector<Sums> partial(static_cast<std::size_t>(slices));
  parallel_for(slices, [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k) {
      Sums acc;
      Vec12 G = Vec12::Zero();
      for (std::size_t n = s.slice_begin[std::size_t(k)]; n < s.slice_begin[std::size_t(k) + 1]; ++n) {
        const Eigen::Vector3d p = s.p[n].cast<double>();
        const double f = s.f[n];
        Eigen::Vector3d gv;
        const double m = trilinear(level.subject, MA * p + mo, system ? &gv : nullptr);
        acc.n += 1, acc.sf += f, acc.sm += m, acc.sff += f * f, acc.smm += m * m, acc.sfm += f * m;
        if (!system) continue;
        const Eigen::Vector3d g = MT * gv;  // d m / d (subject world point)
        G.head<3>() = g;
        if (stage == Stage::Rigid || stage == Stage::Scaled) {
          G.segment<3>(3) = (T.A * p).cross(g);
          // Scaled: T.A diag(1 + s) p, a scale along each template axis.
          if (stage == Stage::Scaled)
            for (int c = 0; c < 3; ++c) G[6 + c] = g.dot(T.A.col(c)) * p[c];
        } else {
          for (int i = 0; i < 3; ++i) G.segment<3>(3 + 3 * i) = g[i] * p;
        }
        // Upper triangle column by column (contiguous in Eigen's column-major storage).
        for (int b = 0; b < np; ++b) {
          double* col = acc.gg.col(b).data();
          const double gb = G[b];
          for (int a = 0; a <= b; ++a) col[a] += G[a] * gb;
        }
        for (int a = 0; a < np; ++a) acc.gf[a] += G[a] * f, acc.gm[a] += G[a] * m, acc.g1[a] += G[a];
      }
      partial[std::size_t(k)] = acc;
    }
  });
  Sums total;
  for (const auto& p : partial) total.add(p);
  Eval e;
  if (total.n < 2) return e;
  const double mf = total.sf / total.n, mm = total.sm / total.n;
  const double vf = total.sff / total.n - mf * mf, vm = total.smm / total.n - mm * mm;
  const double cov = total.sfm / total.n - mf * mm;
  if (!(vf > 0) || !(vm > 1e-12 * std::max(1.0, vf))) {
    e.ncc = 0.0;
    return e;
  }
  e.ncc = cov / std::sqrt(vf * vm);
  if (!system) return e;
  const double a = cov / vm, b = mf - a * mm;
  Mat12 gg = total.gg.selfadjointView<Eigen::Upper>();
  e.H = a * a * gg;
  e.grad = a * (total.gf - a * total.gm - b * total.g1);
  return e;
}

// Applies an LM step; returns the largest displacement it causes within the head, in mm.
double apply_step(Transform& T, const Eigen::VectorXd& step, Stage stage) {
  const Eigen::Vector3d dt = step.head<3>();
  T.t += dt;
  if (stage == Stage::Rigid || stage == Stage::Scaled) {
    const Eigen::Vector3d w = step.segment<3>(3);
    const double angle = w.norm();
    if (angle > 0) T.A = Eigen::AngleAxisd(angle, w / angle).toRotationMatrix() * T.A;
    if (stage == Stage::Rigid) return dt.norm() + angle * kHeadRadiusMm;
    const Eigen::Vector3d sc = step.segment<3>(6);
    T.A = T.A * Eigen::Vector3d(std::exp(sc[0]), std::exp(sc[1]), std::exp(sc[2])).asDiagonal();
    return dt.norm() + (angle + sc.norm()) * kHeadRadiusMm;
  }
  Eigen::Matrix3d dA;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) dA(i, j) = step[3 + 3 * i + j];
  T.A += dA;
  return dt.norm() + dA.norm() * kHeadRadiusMm;
}

// Levenberg-Marquardt (Marquardt's diagonal scaling) maximising NCC; returns iterations used.
int optimise(const Level& level, Transform& T, Stage stage, int max_iterations, double& ncc) {
  const int np = parameter_count(stage);
  const double tolerance_mm = 0.01 * level.spacing_mm;
  Eval cur = evaluate(level, T, stage, true);
  double lambda = 1e-3;
  int it = 0;
  while (it < max_iterations) {
    ++it;
    Eigen::MatrixXd H = cur.H.topLeftCorner(np, np);
    const Eigen::VectorXd diag = H.diagonal();
    if (!(diag.maxCoeff() > 0)) break;
    for (int a = 0; a < np; ++a) H(a, a) += lambda * diag[a] + 1e-12 * diag.maxCoeff();
    const Eigen::VectorXd step = H.ldlt().solve(cur.grad.head(np));
    if (!step.allFinite()) break;
    Transform cand = T;
    const double step_mm = apply_step(cand, step, stage);
    const Eval trial = evaluate(level, cand, stage, true);
    if (trial.ncc > cur.ncc) {
      T = cand;
      cur = trial;
      lambda = std::max(lambda * 0.3, 1e-7);
    } else {
      lambda *= 8.0;
      if (lambda > 1e6) break;
    }
    if (step_mm < tolerance_mm) break;
  }
  ncc = cur.ncc;
  return it;
}

HeadStats head_stats(const Image& image, const std::string& which) {
  const std::size_t stride = std::max<std::size_t>(1, image.data.size() / 400000);
  std::vector<float> values = strided_values(image, stride);
  values.erase(std::remove_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); }), values.end());
  if (values.empty()) throw Error(which + " image is empty");
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const float robust = quantile(values, 0.99);
  if (!(*hi > *lo) || !(robust > 0.0f) || !std::isfinite(robust))
    throw Error(which + " image has no head signal (constant or non-positive intensities)");
  HeadStats h;
  h.threshold = 0.15f * robust;
  std::vector<float> fg;
  for (float v : values)
    if (v > h.threshold) fg.push_back(v);
  if (double(fg.size()) < 0.002 * double(values.size()))
    throw Error(which + " image has no head signal (almost no voxels above background)");
  if (double(fg.size()) > 0.95 * double(values.size()))
    throw Error(which + " image has no head signal (no background around a head: noise only?)");
  h.clip = quantile(fg, 0.995);
  return h;
}

// Centroid of the head's top slab (world RAS), on a level image thresholded with `threshold`.
Eigen::Vector3d head_top_centre(const Image& image, float threshold, const std::string& which) {
  std::vector<Eigen::Vector3d> pts;
  const auto& d = image.grid.dim;
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (image(i, j, k) > threshold) pts.push_back(image.grid.ras(i, j, k).v);
  // Noise without a head is flat once smoothed: demand real background at this coarse scale.
  const float low = quantile(image.data, 0.005), high = quantile(image.data, 0.995);
  if (!(high > 0.0f) || high - low < 0.5f * high)
    throw Error(which + " image has no head signal (no background around a head: noise only?)");
  std::vector<float> z;
  for (const auto& p : pts) z.push_back(float(p[2]));
  const double top = quantile(z, 0.998), bottom = quantile(z, 0.002);
  if (pts.size() < 8 || top - bottom < 40.0)
    throw Error(which + " image has no head signal (no head-sized object above background)");
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  double count = 0;
  for (const auto& p : pts)
    if (p[2] > top - kSlabDepthMm) sum += p, count += 1;
  return sum / count;
}

Image clipped(const Image& image, float clip) {
  Image out = image;
  for (auto& v : out.data) v = std::isfinite(v) ? std::clamp(v, 0.0f, clip) : 0.0f;  // NaN voxels count as air
  return out;
}

// Template points of one level: the head (above `threshold`) plus a background margin, or, with
// `focus` (on the level grid), the focus region plus a smaller margin.
Samples template_samples(const Image& templ, float threshold, const Eigen::Vector3d& centre, double spacing_mm,
                         const Mask* focus) {
  Mask region;
  if (focus) {
    region = dilate(*focus, static_cast<int>(std::ceil(kFocusMarginMm / spacing_mm)));
  } else {
    Mask head(templ.grid, 0);
    for (std::size_t n = 0; n < templ.data.size(); ++n) head.data[n] = templ.data[n] > threshold ? 1 : 0;
    region = dilate(head, static_cast<int>(std::ceil(kMarginMm / spacing_mm)));
  }
  Samples s;
  const auto& d = templ.grid.dim;
  for (std::int64_t k = 0; k < d[2]; ++k) {
    s.slice_begin.push_back(s.p.size());
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (region(i, j, k)) {
          s.p.push_back((templ.grid.ras(i, j, k).v - centre).cast<float>());
          s.f.push_back(templ(i, j, k));
        }
  }
  s.slice_begin.push_back(s.p.size());
  return s;
}

// Pyramid copies of an image for levels given coarse to fine, each blurred to sigma = spacing / 2
// in total: the finest from the native image, each coarser one from the next finer copy.
std::vector<Image> pyramid(const Image& image, const std::vector<double>& levels_mm) {
  std::vector<Image> out(levels_mm.size());
  double have_sigma = 0.0;  // blur already applied, mm
  for (std::size_t n = levels_mm.size(); n-- > 0;) {
    const double want_sigma = 0.5 * levels_mm[n];
    const double extra = std::sqrt(std::max(0.0, want_sigma * want_sigma - have_sigma * have_sigma));
    out[n] = downsample(n + 1 == levels_mm.size() ? image : out[n + 1], levels_mm[n], extra);
    have_sigma = want_sigma;
  }
  return out;
}

Eigen::Matrix3d euler_deg(double x, double y, double z) {
  const double d2r = M_PI / 180.0;
  return (Eigen::AngleAxisd(z * d2r, Eigen::Vector3d::UnitZ()) * Eigen::AngleAxisd(y * d2r, Eigen::Vector3d::UnitY()) *
          Eigen::AngleAxisd(x * d2r, Eigen::Vector3d::UnitX()))
      .toRotationMatrix();
}

}  // namespace

Eigen::Vector3d apply_affine(const Eigen::Matrix4d& m, const Eigen::Vector3d& p) {
  return m.topLeftCorner<3, 3>() * p + m.topRightCorner<3, 1>();
}

AffineResult register_affine(const Image& subject, const Image& templ, const AffineOptions& options) {
  if (options.levels_mm.empty()) throw Error("registration: no pyramid levels given");
  for (std::size_t l = 0; l < options.levels_mm.size(); ++l) {
    const double s = options.levels_mm[l];
    if (!(s > 0 && s <= 32)) throw Error("registration: pyramid level spacing must be in (0, 32] mm");
    if (l > 0 && !(s < options.levels_mm[l - 1]))
      throw Error("registration: pyramid levels must run from coarse to fine (e.g. 8, 4, 2 mm)");
  }
  if (options.max_iterations_per_level < 1) throw Error("registration: max_iterations_per_level must be >= 1");
  for (const Image* im : {&subject, &templ})
    for (int a = 0; a < 3; ++a)
      if (im->grid.dim[a] < 4)
        throw Error(std::string("registration: ") + (im == &subject ? "subject" : "template") +
                    " image is too small (fewer than 4 voxels along an axis)");

  if (options.template_focus) {
    if (!options.template_focus->grid.same_as(templ.grid))
      throw Error("registration: the template focus mask does not lie on the template's grid");
    if (std::none_of(options.template_focus->data.begin(), options.template_focus->data.end(),
                     [](std::uint8_t v) { return v != 0; }))
      throw Error("registration: the template focus mask is empty");
  }
  const HeadStats subj_stats = head_stats(subject, "subject");
  const HeadStats templ_stats = head_stats(templ, "template");
  const std::size_t nlev = options.levels_mm.size();
  Progress progress("registering to template", std::int64_t(nlev) + 1);
  const std::vector<Image> subj_pyr = pyramid(clipped(subject, subj_stats.clip), options.levels_mm);
  const std::vector<Image> templ_pyr = pyramid(clipped(templ, templ_stats.clip), options.levels_mm);
  ++progress;

  // Centring: the top slab of each head (the template has little neck, subjects often much more).
  const Eigen::Vector3d c_templ = head_top_centre(templ_pyr.front(), templ_stats.threshold, "template");
  const Eigen::Vector3d c_subj = head_top_centre(subj_pyr.front(), subj_stats.threshold, "subject");

  std::vector<Level> levels(nlev);
  for (std::size_t l = 0; l < nlev; ++l) {
    Level& L = levels[l];
    L.spacing_mm = options.levels_mm[l];
    L.subject = subj_pyr[l];
    const Eigen::Matrix4d r2v = L.subject.grid.vox2ras.m.inverse();
    L.ras2vox_lin = r2v.topLeftCorner<3, 3>();
    L.ras2vox_off = r2v.topRightCorner<3, 1>();
    Mask focus;
    const bool focused = options.template_focus && l + 1 == nlev;  // finest level only: coarse ones capture
    if (focused) {
      const Image f = resample_affine(to_image(*options.template_focus), templ_pyr[l].grid, Eigen::Matrix4d::Identity(),
                                      Interp::Linear);
      focus = threshold(f, 0.5f);
    }
    L.templ = template_samples(templ_pyr[l], templ_stats.threshold, c_templ, L.spacing_mm, focused ? &focus : nullptr);
    if (L.templ.p.size() < 64) throw Error("registration: too few template sample points (empty focus mask?)");
  }

  AffineResult result;
  Transform identity;
  identity.t = c_templ;  // T(p) = p
  result.similarity_before = evaluate(levels.back(), identity, Stage::Rigid, false).ncc;

  // Coarse search over head tilts, then rigid LM from the best few.
  Transform T;
  T.t = c_subj;
  {
    const Level& L = levels.front();
    std::vector<std::pair<double, Transform>> starts;
    // Pitch (nodding) varies most between scanners and subjects; roll and yaw less.
    const std::vector<double> pitch =
        options.search_rotations ? std::vector<double>{-24, -12, 0, 12, 24} : std::vector<double>{0};
    const std::vector<double> other =
        options.search_rotations ? std::vector<double>{-12, 0, 12} : std::vector<double>{0};
    for (double rx : pitch)
      for (double ry : other)
        for (double rz : other) {
          Transform s = T;
          s.A = euler_deg(rx, ry, rz);
          starts.emplace_back(evaluate(L, s, Stage::Rigid, false).ncc, s);
        }
    std::stable_sort(starts.begin(), starts.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    double best = -2.0;
    const std::size_t tries = std::min<std::size_t>(3, starts.size());
    for (std::size_t n = 0; n < tries; ++n) {
      Transform s = starts[n].second;
      double ncc = 0;
      result.iterations += optimise(L, s, Stage::Rigid, options.max_iterations_per_level, ncc);
      log::debug(fmt::format("registration: start {} (ncc {:.4f}) -> rigid ncc {:.4f}", n, starts[n].first, ncc));
      if (ncc > best) best = ncc, T = s;
    }
  }

  for (std::size_t l = 0; l < nlev; ++l) {
    double ncc = 0;
    const Stage stage = options.rigid_only ? Stage::Rigid : options.shear ? Stage::Affine : Stage::Scaled;
    const int its = optimise(levels[l], T, stage, options.max_iterations_per_level, ncc);
    result.iterations += its;
    log::debug(fmt::format("registration: level {} mm {}: ncc {:.4f} after {} iterations", levels[l].spacing_mm,
                           stage_name(stage), ncc, its));
    ++progress;
  }
  result.similarity_after = evaluate(levels.back(), T, Stage::Rigid, false).ncc;

  Eigen::Matrix4d t2s = Eigen::Matrix4d::Identity();
  t2s.topLeftCorner<3, 3>() = T.A;
  t2s.topRightCorner<3, 1>() = T.t - T.A * c_templ;
  if (!(result.similarity_after >= kMinSimilarity))
    throw Error(fmt::format("registration to the template failed: correlation {:.3f} after fitting (below {}); is "
                            "the subject a head T1?",
                            result.similarity_after, kMinSimilarity));
  const Eigen::Vector3d sv = Eigen::JacobiSVD<Eigen::Matrix3d>(T.A).singularValues();
  if (!t2s.allFinite() || T.A.determinant() <= 0 || sv.maxCoeff() > 2.0 || sv.minCoeff() < 0.5)
    throw Error(fmt::format("registration to the template failed: implausible scale (singular values {:.3f} {:.3f} "
                            "{:.3f}); is the subject a head T1?",
                            sv[0], sv[1], sv[2]));
  result.template_to_subject = t2s;
  result.subject_to_template = t2s.inverse();
  return result;
}

}  // namespace tmsplan
