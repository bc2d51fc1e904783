#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "tmsplan/brain.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/json_geometry.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"
#include "tmsplan/targets.hpp"

#include "neighbourhood.hpp"

namespace tmsplan::targets {
namespace {

// Tuning constants of the placement. They were set on Colin27 and its scanner-like copies (the
// copies' known transforms give the answer; docs/target-pick.md has the figures) and are not
// clinical values.
constexpr double kAxisStepMm = 5.0;           // anatomical_axes: central differences over +-5 mm of MNI
constexpr double kEegDepthMaxMm = 60.0;       // an EEG position's cortex lies within 60 mm under the scalp
constexpr double kEegStepMm = 0.5;            // ... searched inward in 0.5 mm steps
constexpr double kLatticeMm = 0.5;            // the fields are weighed at the points of a 0.5 mm lattice
constexpr double kSnapTemperatureMm = 1.0;    // crown points weighted exp(-distance / 1 mm)
constexpr double kSoftCrownMm = 0.5;          // crown membership falls from 1 to 0 over +-0.5 mm of depth
constexpr double kKnobFreeHeightMm = 4.0;     // hand knob: 4 mm of height from the mapped point are free ...
constexpr double kKnobHeightScaleMm = 4.0;    // ... beyond, (excess)^2 / 4 mm is added to the score
constexpr double kKnobDistanceWeight = 0.25;  // mm of scalp depth traded per mm from the mapped point
constexpr double kKnobTemperatureMm = 1.5;    // soft-min temperature of the knob score (mm)
constexpr double kJacobianStepMm = 2.0;       // the registration's Jacobian: central differences over +-2 mm
constexpr double kDefaultHandleDeg = 45.0;    // posterior_lateral_45: handle backwards, 45 deg from the midline
// Warn when the mapped point lies this far from grey matter: a registration problem. On 17 plans
// (Colin27, Philips and their copies, a defaced Philips) the largest was 3.4 mm (M1_hand_right,
// whose MNI point lies 3.4 mm from Colin27's own GM). The snap's own travel is no such sign: M1's
// nearest crown lies 8-9 mm from the mapped point on every head, the template included.
constexpr double kPriorGmWarningMm = 6.0;
// The coil needs the skin around its entry point: the scalp normal weighs the head's boundary
// over about two of its 6 mm sigmas. A head voxel on a face of the image closer than that means
// the field of view cut the head there and the "scalp" is the cut (a Philips copy cut 15 mm below
// the top of its brain put M1's coil 18.6 mm and 39 degrees off; cut through the skull, 11 mm above
// M1's entry, the pose moved 0.14 mm and 0.3 degrees: docs/target-pick.md).
constexpr double kCutHeadMm = 12.0;

// Column a: map(p + h e_a) - map(p - h e_a), the central differences of a point map at p.
Eigen::Matrix3d central_differences(const PointMap& map, const Eigen::Vector3d& p, double h) {
  Eigen::Matrix3d out;
  for (int a = 0; a < 3; ++a) {
    Eigen::Vector3d d = Eigen::Vector3d::Zero();
    d[a] = h;
    out.col(a) = map(p + d) - map(p - d);
  }
  return out;
}

// Anatomical axes of the subject at a point: MNI's +x (right), +y (anterior), +z (superior)
// carried through the subject mapping (so a tilted head gets tilted directions).
Eigen::Matrix3d anatomical_axes(const Subject& s, const Eigen::Vector3d& mni) {
  Eigen::Matrix3d axes = central_differences(s.mni_to_subject, mni, kAxisStepMm);
  for (int a = 0; a < 3; ++a) axes.col(a).normalize();
  return axes;
}

// The nearest right-handed orthonormal frame keeping the superior axis (Gram-Schmidt from z).
Eigen::Matrix3d orthonormal(const Eigen::Matrix3d& axes) {
  const Eigen::Vector3d z = axes.col(2).normalized();
  const Eigen::Vector3d y = (axes.col(1) - axes.col(1).dot(z) * z).normalized();
  Eigen::Matrix3d out;
  out << y.cross(z), y, z;
  return out;
}

}  // namespace

// ---- Scalp ------------------------------------------------------------------------------------
// Nothing is precomputed over the whole grid: the smoothed level and the normal are Gaussian sums
// over the head mask around the query point (exact, continuous in the point), and nearest-point
// queries go through a bucket grid of the boundary voxels. A few dozen queries per run cost
// milliseconds where whole-grid smoothing and distance transforms cost seconds.
namespace {
constexpr double kLevelSigmaMm = 0.7;   // the scalp surface: 0.5 level of the lightly smoothed mask
constexpr double kNormalSigmaMm = 6.0;  // normals: smoothed over 6 mm (docs/target-pick.md)
constexpr double kCellMm = 8.0;         // bucket size of the boundary grid
}  // namespace

Scalp::Scalp(const Mask& head) : head_(head) {
  ras2vox_ = head.grid.vox2ras.m.inverse();
  spacing_ = head.grid.spacing_mm();
  const auto& d = head.grid.dim;
  // The boundary voxels in scan order: per slice in parallel, then joined in slice order.
  std::vector<std::vector<Eigen::Vector3d>> slices(static_cast<std::size_t>(d[2]));
  parallel_for(d[2], [&](std::int64_t k0, std::int64_t k1) {
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t j = 0; j < d[1]; ++j)
        for (std::int64_t i = 0; i < d[0]; ++i) {
          if (!head(i, j, k)) continue;
          const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                         {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
          bool edge = false;
          for (const auto& n : nb) edge = edge || !head.grid.inside(n[0], n[1], n[2]) || !head(n[0], n[1], n[2]);
          if (edge) slices[std::size_t(k)].push_back(head.grid.ras(i, j, k).v);
        }
  });
  for (const auto& slice : slices) boundary_.insert(boundary_.end(), slice.begin(), slice.end());
  if (boundary_.empty()) throw Error("head mask has no boundary");
  Eigen::Vector3d lo = boundary_.front(), hi = lo;
  for (const auto& q : boundary_) {
    lo = lo.cwiseMin(q);
    hi = hi.cwiseMax(q);
  }
  origin_ = lo;
  for (int a = 0; a < 3; ++a) cells_[a] = static_cast<std::int64_t>(std::floor((hi[a] - lo[a]) / kCellMm)) + 1;
  // Counting sort of the boundary points into cells (order within a cell: scan order).
  std::vector<std::int64_t> cell_of(boundary_.size());
  start_.assign(static_cast<std::size_t>(cells_[0] * cells_[1] * cells_[2] + 1), 0);
  for (std::size_t n = 0; n < boundary_.size(); ++n) {
    const Eigen::Vector3d c = (boundary_[n] - origin_) / kCellMm;
    cell_of[n] = (static_cast<std::int64_t>(c[2]) * cells_[1] + static_cast<std::int64_t>(c[1])) * cells_[0] +
                 static_cast<std::int64_t>(c[0]);
    ++start_[static_cast<std::size_t>(cell_of[n] + 1)];
  }
  for (std::size_t c = 1; c < start_.size(); ++c) start_[c] += start_[c - 1];
  order_.resize(boundary_.size());
  std::vector<std::int64_t> fill(start_.begin(), start_.end() - 1);
  for (std::size_t n = 0; n < boundary_.size(); ++n)
    order_[static_cast<std::size_t>(fill[static_cast<std::size_t>(cell_of[n])]++)] = n;
}

// Gaussian-weighted sums over the mask voxels within 3 sigma of p: the mean of the mask (level)
// and the weighted sum of (p - q) (points away from the head, i.e. along the outward normal).
// Along an axis coarser than 2 sigma (thick slices) the Gaussian widens to half that axis's spacing
// there: a 0.7 mm Gaussian between 5 mm slices met no voxel at all, and a point deep inside the
// head read as outside it. Grids fine enough for the plain Gaussian keep its own expression, so
// their answers stay bit for bit what they were.
Scalp::Sums Scalp::sums(const Eigen::Vector3d& p, double sigma) const {
  const Eigen::Matrix3d to_vox = ras2vox_.topLeftCorner<3, 3>();
  const Eigen::Vector3d c = to_vox * p + ras2vox_.topRightCorner<3, 1>();
  const Eigen::Vector3d sig = spacing_.cwiseMax(2.0 * sigma) * 0.5;  // per axis: max(sigma, spacing / 2)
  const bool isotropic = (sig.array() == sigma).all();
  const double reach = 3.0 * sigma;
  std::int64_t lo[3], hi[3];
  for (int a = 0; a < 3; ++a) {
    lo[a] = static_cast<std::int64_t>(std::floor(c[a] - 3.0 * sig[a] / spacing_[a]));
    hi[a] = static_cast<std::int64_t>(std::ceil(c[a] + 3.0 * sig[a] / spacing_[a]));
  }
  Sums out;
  double weights = 0;
  const double inv2s2 = 1.0 / (2.0 * sigma * sigma);
  for (std::int64_t k = lo[2]; k <= hi[2]; ++k)
    for (std::int64_t j = lo[1]; j <= hi[1]; ++j)
      for (std::int64_t i = lo[0]; i <= hi[0]; ++i) {
        const Eigen::Vector3d q = head_.grid.ras(i, j, k).v;
        double w = 0.0;
        if (isotropic) {
          const double r2 = (p - q).squaredNorm();
          if (r2 > reach * reach) continue;
          w = std::exp(-r2 * inv2s2);
        } else {
          // Distance in each axis's own sigmas (the offset along the voxel axes, in mm).
          const Eigen::Vector3d d = (to_vox * (p - q)).cwiseProduct(spacing_).cwiseQuotient(sig);
          if (d.squaredNorm() > 9.0) continue;
          w = std::exp(-0.5 * d.squaredNorm());
        }
        weights += w;
        if (head_.grid.inside(i, j, k) && head_(i, j, k)) {
          out.level += w;
          out.away += w * (p - q);
        }
      }
  if (weights > 0) out.level /= weights;
  return out;
}

double Scalp::inside_level(const Eigen::Vector3d& p) const { return sums(p, kLevelSigmaMm).level; }

double Scalp::depth(const Eigen::Vector3d& p) const { return (nearest_boundary(p) - p).norm(); }

Eigen::Vector3d Scalp::normal(const Eigen::Vector3d& p) const {
  const Eigen::Vector3d g = sums(p, kNormalSigmaMm).away;
  if (g.norm() < 1e-9) throw Error("no scalp normal here (flat head mask)");
  return g.normalized();
}

std::optional<Eigen::Vector3d> Scalp::exit(const Eigen::Vector3d& from, const Eigen::Vector3d& direction,
                                           double max_mm) const {
  const Eigen::Vector3d u = direction.normalized();
  double inside_t = 0.0;
  if (inside_level(from) <= 0.5) return std::nullopt;
  for (double t = 0.25; t <= max_mm; t += 0.25) {
    if (inside_level(from + t * u) <= 0.5) {
      double lo = inside_t, hi = t;
      for (int it = 0; it < 30; ++it) {
        const double mid = 0.5 * (lo + hi);
        (inside_level(from + mid * u) > 0.5 ? lo : hi) = mid;
      }
      return from + 0.5 * (lo + hi) * u;
    }
    inside_t = t;
  }
  return std::nullopt;
}

// Rings of cells around p's cell: every point in ring r + 1 or beyond is at least r cells away,
// so the search stops once the best distance is within that bound. Ties go to the earlier point
// in scan order, as a plain scan over all points would give.
Eigen::Vector3d Scalp::nearest_boundary(const Eigen::Vector3d& p) const {
  const Eigen::Vector3d c = (p - origin_) / kCellMm;
  const std::int64_t ci = static_cast<std::int64_t>(std::floor(c[0])), cj = static_cast<std::int64_t>(std::floor(c[1])),
                     ck = static_cast<std::int64_t>(std::floor(c[2]));
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_n = 0;
  const std::int64_t max_ring = std::max({std::abs(ci), std::abs(cj), std::abs(ck), std::abs(ci - cells_[0]),
                                          std::abs(cj - cells_[1]), std::abs(ck - cells_[2])}) +
                                std::max({cells_[0], cells_[1], cells_[2]});
  for (std::int64_t r = 0; r <= max_ring; ++r) {
    for (std::int64_t k = ck - r; k <= ck + r; ++k) {
      if (k < 0 || k >= cells_[2]) continue;
      for (std::int64_t j = cj - r; j <= cj + r; ++j) {
        if (j < 0 || j >= cells_[1]) continue;
        const bool face = std::abs(k - ck) == r || std::abs(j - cj) == r;
        for (std::int64_t i = ci - r; i <= ci + r; i += (face || r == 0) ? 1 : 2 * r) {
          if (i < 0 || i >= cells_[0]) continue;
          const auto cell = static_cast<std::size_t>((k * cells_[1] + j) * cells_[0] + i);
          for (auto m = start_[cell]; m < start_[cell + 1]; ++m) {
            const std::size_t n = order_[static_cast<std::size_t>(m)];
            const double dd = (boundary_[n] - p).squaredNorm();
            if (dd < best || (dd == best && n < best_n)) {
              best = dd;
              best_n = n;
            }
          }
        }
      }
    }
    const double bound = static_cast<double>(r) * kCellMm;
    if (std::isfinite(best) && best <= bound * bound) break;
  }
  return boundary_[best_n];
}

Eigen::Vector3d Scalp::nearest(const Eigen::Vector3d& p) const {
  const Eigen::Vector3d b = nearest_boundary(p);
  // Sub-voxel: the 0.5 crossing along the normal through the nearest boundary voxel.
  const Eigen::Vector3d n = normal(b);
  const auto hit = exit(b - 3.0 * n, n, 10.0);
  return hit ? *hit : b;
}

Eigen::Vector3d Scalp::entry(const Eigen::Vector3d& target) const {
  // Fixed point of s -> (exit of the ray from the target along the normal at s), from the nearest
  // point. The normal is smoothed over a few mm, so this is the nearest point of a smoothed scalp:
  // it moves smoothly with the target where the nearest voxel boundary point jumps.
  Eigen::Vector3d s = nearest(target);
  for (int it = 0; it < 20; ++it) {
    const auto hit = exit(target, normal(s), 120.0);
    if (!hit) break;
    const double moved = (*hit - s).norm();
    s = *hit;
    if (moved < 0.01) break;
  }
  return s;
}

// ---- picking ----------------------------------------------------------------------------------
namespace {

// What the request says before it meets the subject: description, source, MNI point, rules.
void describe_request(const Library& lib, const Request& req, Pick& out, const LibraryEntry*& entry) {
  switch (req.kind) {
  case Request::Kind::Library:
    entry = lib.find(req.name);
    if (!entry) {
      std::string names;
      for (const auto& e : lib.entries) names += (names.empty() ? "" : ", ") + e.name;
      throw Error("unknown target '" + req.name + "' (known: " + names + ")");
    }
    out.description = entry->description;
    out.source = entry->source;
    out.mni = entry->mni;
    out.handle_rule = entry->handle_rule;
    out.kind = entry->kind;
    out.hemisphere = entry->hemisphere;
    out.input = {{"kind", "library"}, {"value", req.name}};
    break;
  case Request::Kind::Mni:
    out.description = "user coordinate (MNI)";
    out.source = "user --mni";
    out.mni = req.value;
    out.handle_rule = "posterior_lateral_45";
    out.input = {{"kind", "mni"}, {"value", vec3_to_json(req.value)}};
    break;
  case Request::Kind::Eeg: {
    const auto it = lib.eeg_mni.find(req.name);
    if (it == lib.eeg_mni.end()) throw Error("unknown EEG position '" + req.name + "'");
    out.description = "cortex under EEG " + req.name;
    out.source = lib.eeg_source;
    out.mni = it->second;
    out.handle_rule = "posterior_lateral_45";
    out.input = {{"kind", "eeg"}, {"value", req.name}};
    break;
  }
  case Request::Kind::Ras:
    out.description = "user coordinate (subject RAS)";
    out.source = "user --ras";
    out.handle_rule = "posterior_lateral_45";
    out.input = {{"kind", "ras"}, {"value", vec3_to_json(req.value)}};
    break;
  }
}

// 1. Into the subject: out.prior (subject RAS), refused outside the head. EEG positions lie on
//    the scalp: they are projected inwards onto the cortex. Returns the MNI point.
Eigen::Vector3d into_subject(const Subject& s, const Scalp& scalp, const Request& req, const std::string& who,
                             Pick& out) {
  const Eigen::Vector3d mni = out.mni ? *out.mni : s.subject_to_mni(req.value);
  out.prior = out.mni ? s.mni_to_subject(mni) : req.value;
  if (req.kind == Request::Kind::Eeg) {
    const Eigen::Vector3d on_scalp = scalp.nearest(out.prior);
    const Eigen::Vector3d inward = -scalp.normal(on_scalp);
    double best = std::numeric_limits<double>::infinity();
    Eigen::Vector3d hit = out.prior;
    for (double t = 0; t < kEegDepthMaxMm; t += kEegStepMm) {
      const Eigen::Vector3d q = on_scalp + t * inward;
      const auto ijk = ras_to_voxel(s.grid.vox2ras, RasPoint(q)).v;
      const auto i = std::lround(ijk[0]), j = std::lround(ijk[1]), k = std::lround(ijk[2]);
      if (s.grid.inside(i, j, k) && s.gm(i, j, k)) {
        hit = q;
        best = t;
        break;
      }
    }
    if (!std::isfinite(best)) throw Error("no grey matter under EEG position " + req.name);
    out.prior = hit;
  }
  const Eigen::Vector3d prior_ijk = ras_to_voxel(s.grid.vox2ras, RasPoint(out.prior)).v;
  if (!s.grid.inside(std::lround(prior_ijk[0]), std::lround(prior_ijk[1]), std::lround(prior_ijk[2])) ||
      scalp.inside_level(out.prior) < 0.5)
    throw Error(fmt::format("{} lies outside the head ({:.1f}, {:.1f}, {:.1f} RAS mm){}", who, out.prior[0],
                            out.prior[1], out.prior[2],
                            req.kind == Request::Kind::Ras ? ": is it an MNI coordinate? use --mni" : ""));
  if (!out.mni) out.mni = mni;
  return mni;
}

// The settled point: `centre` (a weighted mean of lattice points, which may lie off the cortex on
// a curved crown) moved along the line to its scalp entry (the coil axis) into the grey matter
// within 2 mm; else the point of `pool` (the weighted grey-matter points) nearest to it.
Eigen::Vector3d settle(const Neighbourhood& nb, const Scalp& scalp, const Eigen::Vector3d& centre,
                       const std::vector<Eigen::Vector3d>& pool) {
  const Eigen::Vector3d out = scalp.entry(centre) - centre;
  if (out.norm() > 1e-6)
    if (const auto p = nb.onto_cortex(centre, out)) return *p;
  Eigen::Vector3d best = centre;
  double best_d = std::numeric_limits<double>::infinity();
  for (const auto& q : pool)
    if ((q - centre).norm() < best_d) best_d = (q - centre).norm(), best = q;
  return best;
}

// 2. Snap to the nearest grey-matter crown within the radius (with Snap::Nearest, to the nearest
//    grey matter: the crown factor below is 1 everywhere). Every quantity is a field sampled at the
//    points of a 0.5 mm lattice that follows the anatomy (centred on the mapped point, along the
//    anatomical axes): the GM indicator (trilinear, 0..1), a soft crown membership (1 up to
//    crown_depth - 0.5 mm below the shallowest, 0 beyond + 0.5) and exp(-distance / 1 mm). Their
//    weighted mean is settled onto the cortex. No voxel enters or leaves the sums at a gate, so
//    the answer moves continuously with the mapped point and the masks.
void snap_to_crown(const Neighbourhood& nb, const Scalp& scalp, const Options& opt, const std::string& who, Pick& out) {
  struct Node {
    Eigen::Vector3d p;
    double gm, depth;
  };
  std::vector<Node> nodes;
  for (const auto& p : nb.lattice(opt.snap_radius_mm, kLatticeMm)) {
    const double g = nb.gm(p);
    if (g > 0.0) nodes.push_back({p, g, nb.depth(p)});
  }
  double min_depth = std::numeric_limits<double>::infinity();
  out.prior_to_gm_mm = std::numeric_limits<double>::infinity();
  for (const auto& n : nodes)
    if (n.gm >= 0.5) {
      min_depth = std::min(min_depth, n.depth);
      out.prior_to_gm_mm = std::min(out.prior_to_gm_mm, (n.p - out.prior).norm());
    }
  if (!std::isfinite(min_depth))
    throw Error(fmt::format("{}: no grey matter within {:.0f} mm of ({:.1f}, {:.1f}, {:.1f}) RAS mm", who,
                            opt.snap_radius_mm, out.prior[0], out.prior[1], out.prior[2]));
  Eigen::Vector3d centre = Eigen::Vector3d::Zero();
  double weights = 0.0;
  std::vector<Eigen::Vector3d> pool;
  for (const auto& n : nodes) {
    const double crown =
        opt.snap == Snap::Nearest ? 1.0 : std::clamp(min_depth + opt.crown_depth_mm + kSoftCrownMm - n.depth, 0.0, 1.0);
    const double wt = n.gm * crown * std::exp(-(n.p - out.prior).norm() / kSnapTemperatureMm);
    centre += wt * n.p;
    weights += wt;
    if (wt > 0.0 && n.gm >= 0.5) pool.push_back(n.p);
  }
  out.cortical = settle(nb, scalp, centre / weights, pool);
  out.snap_shift_mm = (out.cortical - out.prior).norm();
}

// 3. M1: toward the hand knob, approximated as the most superficial precentral (BA4) grey matter
//    near the mapped point (the knob bulges toward the scalp on the lateral convexity). Lattice
//    points as in step 2 are weighted by GM x BA4 (trilinear fields, 0..1) x exp(-score / 1.5 mm),
//    score = depth along the outward direction above the mapped point + 0.25 x distance to it +
//    (height beyond 4 mm along MNI's superior axis)^2 / 4 mm. The score is measured in MNI mm: each
//    lattice point is carried to MNI through the subject's registration, and the outward direction
//    is the scalp normal above the mapped point carried there as a normal (inverse transpose of the
//    map's Jacobian). Measured in the subject's mm instead, the score's tilt moves with any local
//    shear of the head, and the same head warped by 5 mm put its M1 1.3 mm away from the warped
//    answer (docs/target-pick.md). The score itself prefers crowns; a crown gate on the hull depth
//    as well made the answer follow the brain mask (measured: the anisotropic scan's M1 0.70 ->
//    0.37 mm without it). No hard gate makes a candidate appear or vanish; the weighted mean is
//    settled onto the cortex.
void refine_hand_knob(const Subject& s, const Scalp& scalp, const Neighbourhood& nb, const Options& opt, Pick& out) {
  const Eigen::Vector3d snapped = out.cortical;
  const Eigen::Vector3d origin = s.subject_to_mni(out.prior);
  // d(MNI) / d(subject) at the mapped point
  const Eigen::Matrix3d jac =
      central_differences(s.subject_to_mni, out.prior, kJacobianStepMm) / (2.0 * kJacobianStepMm);
  if (!(std::abs(jac.determinant()) > 1e-6))
    throw Error("the registration to MNI is degenerate (zero Jacobian) at target '" + out.name + "'");
  const Eigen::Vector3d n0 = (jac.inverse().transpose() * scalp.normal(scalp.entry(out.prior))).normalized();
  std::vector<std::pair<double, Eigen::Vector3d>> scored;  // (weight factor, point); scores below
  std::vector<double> scores;
  for (const auto& p : nb.lattice(opt.refine_radius_mm, kLatticeMm)) {
    const double g = nb.gm(p);
    if (g <= 0.0) continue;
    const double a = nb.area(p);
    if (a <= 0.0) continue;
    const Eigen::Vector3d d = s.subject_to_mni(p) - origin;
    const double over = std::max(0.0, std::abs(d[2]) - kKnobFreeHeightMm);
    scores.push_back(-d.dot(n0) + kKnobDistanceWeight * d.norm() + over * over / kKnobHeightScaleMm);
    scored.emplace_back(g * a, p);
  }
  if (scored.empty()) {
    out.warnings.push_back("no precentral (BA4) grey matter near the target: hand-knob refinement skipped");
    return;
  }
  const double best = *std::min_element(scores.begin(), scores.end());
  Eigen::Vector3d centre = Eigen::Vector3d::Zero();
  double weights = 0;
  std::vector<Eigen::Vector3d> pool;
  for (std::size_t i = 0; i < scored.size(); ++i) {
    const double wt = scored[i].first * std::exp(-(scores[i] - best) / kKnobTemperatureMm);
    centre += wt * scored[i].second;
    weights += wt;
    if (scored[i].first >= 0.5) pool.push_back(scored[i].second);
  }
  out.cortical = settle(nb, scalp, centre / weights, pool);
  out.refine_shift_mm = (out.cortical - snapped).norm();
}

// 4. Scalp entry: the nearest scalp point, and the point whose scalp normal passes through the
//    target (the coil goes there), normal, coil pose.
void place_coil(const Subject& s, const Scalp& scalp, const Request& req, const std::string& hemisphere,
                const std::string& who, const Options& opt, Pick& out) {
  out.scalp_nearest = scalp.nearest(out.cortical);
  out.scalp = scalp.entry(out.cortical);
  out.normal = scalp.normal(out.scalp);
  out.scalp_to_cortex_mm = (out.scalp - out.cortical).norm();
  const Eigen::Vector3d z = -out.normal;
  const Eigen::Matrix3d axes = anatomical_axes(s, s.subject_to_mni(out.cortical));
  const double lateral_sign =
      hemisphere.empty() ? (s.subject_to_mni(out.cortical)[0] < 0 ? -1.0 : 1.0) : (hemisphere == "left" ? -1.0 : 1.0);
  out.handle_angle_deg = req.handle_angle_deg.value_or(kDefaultHandleDeg);
  if (out.handle_rule != "posterior_lateral_45" && !req.handle_angle_deg)
    throw Error("unknown handle rule '" + out.handle_rule + "' for " + who);
  const double a = out.handle_angle_deg * M_PI / 180.0;
  const Eigen::Vector3d wanted = std::cos(a) * (-axes.col(1)) + std::sin(a) * lateral_sign * axes.col(0);
  Eigen::Vector3d y = wanted - wanted.dot(z) * z;
  if (y.norm() < 1e-6) throw Error("handle direction is parallel to the scalp normal for " + who);
  y.normalize();
  out.handle = y;
  const Eigen::Vector3d x = y.cross(z);
  out.centre = out.scalp + opt.hair_offset_mm * out.normal;
  out.pose.setIdentity();
  out.pose.col(0).head<3>() = x;
  out.pose.col(1).head<3>() = y;
  out.pose.col(2).head<3>() = z;
  out.pose.col(3).head<3>() = out.centre;
  if (out.handle_rule == "posterior_lateral_45" && !req.handle_angle_deg)
    out.handle_rule = "handle backwards, 45 degrees away from the midline (posterior-to-anterior current)";
  else
    out.handle_rule = fmt::format("handle {:.0f} degrees from posterior toward lateral (user)", out.handle_angle_deg);
}

// The smallest distance (mm) from p to a head voxel on a face of the image grid (infinity when the
// head lies inside the field of view).
double distance_to_cut_head(const Mask& head, const Eigen::Vector3d& p) {
  const Eigen::Vector3d v = ras_to_voxel(head.grid.vox2ras, RasPoint(p)).v;
  const Eigen::Matrix3d m = head.grid.vox2ras.m.topLeftCorner<3, 3>();
  double best = std::numeric_limits<double>::infinity();
  head.grid.for_each_face_voxel([&](std::int64_t i, std::int64_t j, std::int64_t k) {
    if (head(i, j, k)) best = std::min(best, (m * (Eigen::Vector3d(double(i), double(j), double(k)) - v)).norm());
  });
  return best;
}

}  // namespace

Pick pick(const Subject& s, const Scalp& scalp, const Library& lib, const Request& req, const Options& opt) {
  Pick out;
  out.name = req.name;
  const LibraryEntry* entry = nullptr;
  describe_request(lib, req, out, entry);
  const std::string who = "target '" + out.name + "'";

  const Eigen::Vector3d mni = into_subject(s, scalp, req, who, out);
  const bool knob = entry && entry->refine == "hand_knob" && !s.brodmann.data.empty();
  const int area = knob ? (entry->atlas_label.count("brodmann") ? entry->atlas_label.at("brodmann") : 4) : 0;
  const Eigen::Matrix3d axes = orthonormal(anatomical_axes(s, mni));
  const Neighbourhood nb(s, out.prior, axes, std::max(opt.snap_radius_mm, opt.refine_radius_mm) + 1.0, area);
  snap_to_crown(nb, scalp, opt, who, out);
  if (knob) refine_hand_knob(s, scalp, nb, opt, out);
  place_coil(s, scalp, req, out.hemisphere, who, opt, out);
  const double cut = distance_to_cut_head(s.head, out.scalp);
  if (cut < kCutHeadMm)
    throw Error(fmt::format("the image's field of view cuts through the head {:.1f} mm from the scalp entry "
                            "({:.1f}, {:.1f}, {:.1f}) RAS mm, so the skin under the coil is not in the scan",
                            cut, out.scalp[0], out.scalp[1], out.scalp[2]),
                "head_mask.nii.gz");

  if (out.scalp_to_cortex_mm > opt.deep_warning_mm)
    out.warnings.push_back(
        fmt::format("target is {:.1f} mm below the scalp (deeper than {:.0f} mm): stimulation may not reach it",
                    out.scalp_to_cortex_mm, opt.deep_warning_mm));
  const double brain_cut_ml = volume_on_faces_ml(s.brain);  // the image's faces only: cheap per target
  if (brain_cut_ml > brain::kBrainCutMl)
    out.warnings.push_back(fmt::format("the image's field of view cuts through the brain ({:.1f} ml of the brain mask "
                                       "lie on its faces): the registration, and so this target, is less reliable",
                                       brain_cut_ml));
  if (out.prior_to_gm_mm > kPriorGmWarningMm)
    out.warnings.push_back(fmt::format(
        "the MNI point maps {:.1f} mm from the nearest grey matter (over {:.0f} mm): check the registration",
        out.prior_to_gm_mm, kPriorGmWarningMm));
  const Eigen::Vector3d cijk = ras_to_voxel(s.grid.vox2ras, RasPoint(out.cortical)).v;
  if (!s.brodmann.data.empty())
    out.atlas["brodmann"] = s.brodmann(std::lround(cijk[0]), std::lround(cijk[1]), std::lround(cijk[2]));
  out.mni = out.mni ? out.mni : std::optional<Eigen::Vector3d>(mni);
  return out;
}

nlohmann::json Pick::to_json() const {
  nlohmann::json j = {{"name", name},
                      {"description", description},
                      {"source", source},
                      {"input", input},
                      {"prior_ras", vec3_to_json(prior)},
                      {"cortical_ras", vec3_to_json(cortical)},
                      {"prior_to_gm_mm", std::round(prior_to_gm_mm * 100) / 100},
                      {"snap_shift_mm", std::round(snap_shift_mm * 100) / 100},
                      {"refine_shift_mm", std::round(refine_shift_mm * 100) / 100},
                      {"scalp_ras", vec3_to_json(scalp)},
                      {"scalp_nearest_ras", vec3_to_json(scalp_nearest)},
                      {"scalp_normal_ras", vec3_to_json(normal)},
                      {"coil_centre_ras", vec3_to_json(centre)},
                      {"coil_pose_ras", mat4_to_json(pose)},
                      {"handle_direction_ras", vec3_to_json(handle)},
                      {"handle_rule", handle_rule},
                      {"handle_angle_deg", handle_angle_deg},
                      {"scalp_to_cortex_mm", std::round(scalp_to_cortex_mm * 100) / 100},
                      {"atlas", atlas},
                      {"warnings", warnings}};
  if (mni) j["mni"] = vec3_to_json(*mni);
  if (!classical.is_null()) j["classical"] = classical;
  return j;
}

nlohmann::json classical_positions(const Subject& s, const Scalp& scalp, const Library& lib, const Pick& dlpfc,
                                   const std::optional<Pick>& m1) {
  nlohmann::json out = nlohmann::json::object();
  const auto f3 = lib.eeg_mni.find("F3");
  if (f3 != lib.eeg_mni.end()) {
    const Eigen::Vector3d p = scalp.nearest(s.mni_to_subject(f3->second));
    out["eeg_F3_scalp_ras"] = vec3_to_json(p);
    out["eeg_F3_to_target_scalp_mm"] = std::round((p - dlpfc.scalp).norm() * 10) / 10;
    out["eeg_F3_note"] = "F3 of the 10-10 system on the MNI head (" + lib.eeg_source + ") carried to this head";
  }
  if (m1) {
    // 5 cm anterior of the motor spot along the scalp, in 5 mm steps re-projected onto the scalp.
    const Eigen::Matrix3d axes = anatomical_axes(s, s.subject_to_mni(m1->scalp));
    Eigen::Vector3d p = m1->scalp;
    double walked = 0;
    for (int step_index = 0; step_index < 10; ++step_index) {  // ten 5 mm steps along the scalp
      const Eigen::Vector3d n = scalp.normal(p);
      const Eigen::Vector3d tangent = (axes.col(1) - axes.col(1).dot(n) * n).normalized();
      const Eigen::Vector3d q = scalp.nearest(p + 5.0 * tangent);
      walked += (q - p).norm();
      p = q;
    }
    out["rule_5cm_scalp_ras"] = vec3_to_json(p);
    out["rule_5cm_to_target_scalp_mm"] = std::round((p - dlpfc.scalp).norm() * 10) / 10;
    out["rule_5cm_note"] = fmt::format(
        "5 cm anterior of the {} scalp point along the scalp (ten 5 mm steps; path {:.1f} mm)", m1->name, walked);
  }
  return out;
}

}  // namespace tmsplan::targets
