// Boundary elements for one homogeneous conductor (DESIGN.md 10; docs/efield.md).
//
// Unknown: a piecewise-constant surface charge q (sigma/eps0, V/m) on each triangle. With the
// outward normal n, the normal field just inside the boundary is n.E_p + n.E_s - q/2, and it must
// vanish (no current leaves the conductor):
//   (K - I/2) q = -n.E_p,   K_ij = 1/(4 pi) n_i . int_Tj (c_i - r') / |c_i - r'|^3 dS'
// collocated at the triangle centroids c_i. K - I/2 is singular (the charge of a charged conductor
// has no field inside); the true solution carries no net charge, so the rank-one term 1 a^T / S
// (a: triangle areas, S their sum) removes the null space without changing the solution.
// The field inside is then E = E_p + 1/(4 pi) sum_j q_j int_Tj (r - r')/|r - r'|^3 dS'.
// Integrals over a triangle use its centroid when the point is far compared with its size, and
// split it into four recursively otherwise.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>

#include "internal.hpp"
#include "tmsplan/clock.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"

namespace tmsplan::efield {

namespace {

constexpr double kFour_pi = 4.0 * M_PI;
// A triangle whose centroid is farther than kFar times its longest edge is one point; nearer,
// its integral is taken in closed form (detail::triangle_field).
constexpr double kFar = 4.0;
// Field maps: triangles grouped in cells of kPatch mm; a cell is one charge and one dipole beyond
// kPatchFar of its radii.
constexpr double kPatch = 16.0;
constexpr double kPatchFar = 4.0;
// The right-hand side sees a cluster of coil dipoles as one dipole beyond this many radii.
constexpr double kClusterFar = 8.0;

// Signed solid angle of triangle (a, b, c) seen from p (Van Oosterom & Strackee).
double solid_angle(const Eigen::Vector3d& p, const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                   const Eigen::Vector3d& c) {
  const Eigen::Vector3d x = a - p, y = b - p, z = c - p;
  const double lx = x.norm(), ly = y.norm(), lz = z.norm();
  const double num = x.dot(y.cross(z));
  const double den = lx * ly * lz + x.dot(y) * lz + y.dot(z) * lx + z.dot(x) * ly;
  return 2.0 * std::atan2(num, den);
}

// int_T dS / |p - r'| for p in the plane of the triangle (a, b, c), inside it: the sum over the
// three triangles (p, u, v) of d (asinh(s_v/d) - asinh(s_u/d)), d the distance from p to the
// line uv and s the positions of u and v along it from the foot of the perpendicular.
double inverse_distance_integral(const Eigen::Vector3d& p, const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                                 const Eigen::Vector3d& c) {
  double sum = 0;
  const Eigen::Vector3d v[3] = {a, b, c};
  for (int k = 0; k < 3; ++k) {
    const Eigen::Vector3d u = v[k], w = v[(k + 1) % 3];
    const Eigen::Vector3d e = (w - u).normalized();
    const double su = (u - p).dot(e), sw = (w - p).dot(e);
    const double d = ((u - p) - su * e).norm();
    if (d < 1e-12) continue;
    sum += d * std::abs(std::asinh(sw / d) - std::asinh(su / d));
  }
  return sum;
}

}  // namespace

namespace detail {
Eigen::Vector3d triangle_field(const Eigen::Vector3d& r, const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                               const Eigen::Vector3d& c) {
  const Eigen::Vector3d n = (b - a).cross(c - a).normalized();
  const Eigen::Vector3d x[3] = {a - r, b - r, c - r};
  const double len[3] = {x[0].norm(), x[1].norm(), x[2].norm()};
  // Normal part: h int dS/R^3 = the solid angle, positive on the normal's side (Van Oosterom &
  // Strackee's signed formula counts the other way round).
  const double num = x[0].dot(x[1].cross(x[2]));
  const double den =
      len[0] * len[1] * len[2] + x[0].dot(x[1]) * len[2] + x[1].dot(x[2]) * len[0] + x[2].dot(x[0]) * len[1];
  Eigen::Vector3d out = -2.0 * std::atan2(num, den) * n;
  // In-plane part: int_T grad' (1/R) dS' = sum over edges of m_e int_e dl/R (m_e: the outward
  // in-plane normal of the edge), int ds/sqrt(s^2 + d^2) = asinh(s1/d) - asinh(s0/d) written
  // without cancellation on either side of the foot of the perpendicular.
  for (int k = 0; k < 3; ++k) {
    const Eigen::Vector3d& xu = x[k];
    const Eigen::Vector3d& xw = x[(k + 1) % 3];
    const double ru = len[k], rw = len[(k + 1) % 3];
    const Eigen::Vector3d t = (xw - xu).normalized();
    const double s0 = xu.dot(t), s1 = xw.dot(t);
    double line;
    if (s0 >= 0) {
      line = std::log((rw + s1) / (ru + s0));
    } else if (s1 <= 0) {
      line = std::log((ru - s0) / (rw - s1));
    } else {
      const double d2 = xu.cross(t).squaredNorm();
      line = std::log((rw + s1) * (ru - s0) / d2);
    }
    out += line * t.cross(n);
  }
  return out;
}
}  // namespace detail

struct BemModel::Impl {
  Mesh mesh;
  Eigen::Matrix3Xd centroid, normal;
  Eigen::VectorXd area, self, size2;
  Eigen::Matrix<double, 9, Eigen::Dynamic> corners;  // per triangle: its three vertices, for near-field integrals
  double total_area = 0, mean_edge = 0, max_edge = 0;
  detail::DenseLu lu;
  double setup_seconds = 0;

  // int_Tj (r - r')/|r - r'|^3 dS', in closed form.
  Eigen::Vector3d near(const Eigen::Vector3d& r, Eigen::Index j) const {
    return detail::triangle_field(r, corners.block<3, 1>(0, j), corners.block<3, 1>(3, j), corners.block<3, 1>(6, j));
  }

  Eigen::Vector3d vtx(int t, int k) const {
    return mesh
        .vertices[static_cast<std::size_t>(mesh.triangles[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)])];
  }

  // Patches of triangles (cells of kPatch mm by centroid) for the far field of many points.
  std::vector<std::vector<int>> patch_tris;
  Eigen::Matrix3Xd patch_centre;
  std::vector<double> patch_radius;  // farthest reach of a member triangle from the centre
  Eigen::Matrix3Xd patch_area;       // sum of area x outward normal over the members
  void make_patches() {
    std::map<std::array<long, 3>, std::vector<int>> cells;
    for (Eigen::Index j = 0; j < centroid.cols(); ++j)
      cells[{std::lround(std::floor(centroid(0, j) / kPatch)), std::lround(std::floor(centroid(1, j) / kPatch)),
             std::lround(std::floor(centroid(2, j) / kPatch))}]
          .push_back(static_cast<int>(j));
    patch_centre.resize(3, static_cast<Eigen::Index>(cells.size()));
    patch_area.resize(3, static_cast<Eigen::Index>(cells.size()));
    for (const auto& [key, tris] : cells) {
      const auto c = static_cast<Eigen::Index>(patch_tris.size());
      patch_centre.col(c).setZero();
      patch_area.col(c).setZero();
      for (int j : tris) patch_centre.col(c) += centroid.col(j) / double(tris.size());
      for (int j : tris) patch_area.col(c) += area[j] * normal.col(j);
      double r = 0;
      for (int j : tris) r = std::max(r, (centroid.col(j) - patch_centre.col(c)).norm() + std::sqrt(size2[j]));
      patch_radius.push_back(r);
      patch_tris.push_back(tris);
    }
  }

  // Charge s at c (and dipole p about c) at every point of the block:
  // s R/|R|^3 + 3 (p.R) R/|R|^5 - p/|R|^3, R = r - c.
  template <typename T>
  static void add_far(detail::PointBlockT<T>& blk, const Eigen::Vector3d& c, double charge, const Eigen::Vector3d& p) {
    const T cx = T(c.x()), cy = T(c.y()), cz = T(c.z()), qx = T(p.x()), qy = T(p.y()), qz = T(p.z()), s = T(charge);
    for (std::int64_t i = 0; i < detail::PointBlockT<T>::kSize; ++i) {
      const T rx = blk.px[i] - cx, ry = blk.py[i] - cy, rz = blk.pz[i] - cz;
      const T d2 = rx * rx + ry * ry + rz * rz, inv2 = T(1) / d2, inv3 = inv2 / std::sqrt(d2);
      const T f = (s + T(3) * (qx * rx + qy * ry + qz * rz) * inv2) * inv3;
      blk.ex[i] += rx * f - qx * inv3, blk.ey[i] += ry * f - qy * inv3, blk.ez[i] += rz * f - qz * inv3;
    }
  }

  // Triangle j's share at every point of the block: one charge when far, else integrated.
  template <typename T> void add_triangle(detail::PointBlockT<T>& blk, double qj, int j) const {
    const Eigen::Vector3d c = centroid.col(j);
    const double far2 = kFar * kFar * size2[j];
    for (std::int64_t i = 0; i < blk.n; ++i) {
      const Eigen::Vector3d r(blk.px[i], blk.py[i], blk.pz[i]);
      const Eigen::Vector3d dv = r - c;
      const double d2 = dv.squaredNorm();
      const Eigen::Vector3d add =
          d2 > far2 ? Eigen::Vector3d(dv * (qj * area[j] / (d2 * std::sqrt(d2)))) : Eigen::Vector3d(qj * near(r, j));
      blk.ex[i] += T(add.x()), blk.ey[i] += T(add.y()), blk.ez[i] += T(add.z());
    }
  }

  // 1/(4 pi) sum_j q_j int_Tj (r - r')/|r - r'|^3 for many points, in blocks of nearby points
  // (8 mm bricks): a patch of triangles farther than kPatchFar radii from the whole block is one
  // charge and one dipole about its centre (error ~ (radius/distance)^2, the order of the
  // centroid rule the triangles themselves use beyond kFar); nearer patches go triangle by
  // triangle. Each point sums in a fixed order: the thread count does not change a bit.
  template <typename T> Eigen::Matrix3Xd secondary(const Eigen::VectorXd& q, const Eigen::Matrix3Xd& pts) const {
    constexpr std::int64_t kB = detail::PointBlockT<T>::kSize;
    std::vector<std::pair<std::array<long, 3>, Eigen::Index>> keyed(static_cast<std::size_t>(pts.cols()));
    for (Eigen::Index i = 0; i < pts.cols(); ++i)
      keyed[static_cast<std::size_t>(i)] = {{std::lround(std::floor(pts(2, i) / 8.0)),
                                             std::lround(std::floor(pts(1, i) / 8.0)),
                                             std::lround(std::floor(pts(0, i) / 8.0))},
                                            i};
    std::sort(keyed.begin(), keyed.end());
    Eigen::Matrix3Xd sorted(3, pts.cols()), es(3, pts.cols());
    for (Eigen::Index i = 0; i < pts.cols(); ++i) sorted.col(i) = pts.col(keyed[static_cast<std::size_t>(i)].second);
    // Each patch's total charge and dipole moment about its centre.
    const std::size_t np = patch_tris.size();
    std::vector<double> pq(np, 0.0);
    Eigen::Matrix3Xd pd = Eigen::Matrix3Xd::Zero(3, static_cast<Eigen::Index>(np));
    for (std::size_t c = 0; c < np; ++c)
      for (int j : patch_tris[c]) {
        pq[c] += q[j] * area[j];
        pd.col(static_cast<Eigen::Index>(c)) +=
            q[j] * area[j] * (centroid.col(j) - patch_centre.col(static_cast<Eigen::Index>(c)));
      }
    const std::int64_t blocks = (pts.cols() + kB - 1) / kB;
    parallel_for(blocks, [&](std::int64_t b0, std::int64_t b1) {
      detail::PointBlockT<T> blk;
      for (std::int64_t b = b0; b < b1; ++b) {
        blk.load(sorted, b);
        for (std::size_t c = 0; c < np; ++c) {
          const auto ci = static_cast<Eigen::Index>(c);
          const double reach = kPatchFar * patch_radius[c];
          if (blk.distance2(patch_centre.col(ci)) > reach * reach) {
            add_far(blk, patch_centre.col(ci), pq[c], pd.col(ci));
            continue;
          }
          for (int j : patch_tris[c]) {
            const double far2 = kFar * kFar * size2[j];
            if (blk.distance2(centroid.col(j)) > far2)
              add_far(blk, centroid.col(j), q[j] * area[j], Eigen::Vector3d::Zero());
            else
              add_triangle(blk, q[j], j);
          }
        }
        for (std::int64_t i = 0; i < blk.n; ++i)
          es.col(blk.first + i) = Eigen::Vector3d(blk.ex[i], blk.ey[i], blk.ez[i]) / kFour_pi;
      }
    });
    Eigen::Matrix3Xd e(3, pts.cols());
    for (Eigen::Index i = 0; i < pts.cols(); ++i) e.col(keyed[static_cast<std::size_t>(i)].second) = es.col(i);
    return e;
  }
};

BemModel::~BemModel() = default;
BemModel::BemModel(BemModel&&) noexcept = default;

BemModel::BemModel(const Mesh& surface) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.mesh = surface;
  const int n = static_cast<int>(surface.triangles.size());
  if (n < 20) throw Error(fmt::format("the conductor surface has too few triangles ({})", n));
  const MeshTopology topo = mesh_topology(surface);
  if (!topo.closed_manifold())
    throw Error(fmt::format("the conductor surface is not a closed, consistently oriented surface ({} open edges, {} "
                            "non-manifold edges, {} misoriented edges)",
                            topo.boundary_edges, topo.nonmanifold_edges, topo.misoriented_edges));
  if (enclosed_volume_ml(surface) <= 0)
    throw Error(
        "the conductor surface is oriented inwards (its triangles must be counter-clockwise seen from outside)");
  m.centroid.resize(3, n);
  m.normal.resize(3, n);
  m.area.resize(n);
  double edge_sum = 0;
  for (int t = 0; t < n; ++t) {
    const Eigen::Vector3d a = m.vtx(t, 0), b = m.vtx(t, 1), c = m.vtx(t, 2);
    const Eigen::Vector3d cr = (b - a).cross(c - a);
    m.area[t] = 0.5 * cr.norm();
    if (!(m.area[t] > 0)) throw Error(fmt::format("the conductor surface has a degenerate triangle ({})", t + 1));
    m.normal.col(t) = cr.normalized();
    m.centroid.col(t) = (a + b + c) / 3.0;
    for (double e : {(b - a).norm(), (c - b).norm(), (a - c).norm()}) {
      edge_sum += e;
      m.max_edge = std::max(m.max_edge, e);
    }
  }
  m.mean_edge = edge_sum / (3.0 * n);
  // The flat triangle under its own centroid contributes nothing to K_ii, where the curved surface
  // it stands for contributes 1/(4 pi) int n.(c - r')/|c - r'|^3 ~ H/(8 pi) int dS/|c - r'|
  // (n.(c - r') ~ H rho^2 / 2 for mean curvature H). Leaving it out is an O(h H) error of the
  // whole solution (about 5 % at 5 mm triangles on a head-sized sphere). H per triangle from its
  // edge neighbours: the circle through both centroids tangent to this triangle's plane.
  std::map<std::pair<int, int>, std::vector<int>> edge_tris;
  for (int t = 0; t < n; ++t)
    for (int k = 0; k < 3; ++k) {
      int a = surface.triangles[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)];
      int b = surface.triangles[static_cast<std::size_t>(t)][static_cast<std::size_t>((k + 1) % 3)];
      edge_tris[{std::min(a, b), std::max(a, b)}].push_back(t);
    }
  std::vector<double> hsum(static_cast<std::size_t>(n), 0.0);
  std::vector<int> hcount(static_cast<std::size_t>(n), 0);
  for (const auto& [edge, tris] : edge_tris) {
    if (tris.size() != 2) continue;
    for (int s = 0; s < 2; ++s) {
      const int i = tris[static_cast<std::size_t>(s)], j = tris[static_cast<std::size_t>(1 - s)];
      const Eigen::Vector3d dc = m.centroid.col(i) - m.centroid.col(j);
      hsum[static_cast<std::size_t>(i)] += 2.0 * dc.dot(m.normal.col(i)) / dc.squaredNorm();
      ++hcount[static_cast<std::size_t>(i)];
    }
  }
  m.self.resize(n);
  for (int t = 0; t < n; ++t) {
    const double h = hcount[static_cast<std::size_t>(t)]
                         ? hsum[static_cast<std::size_t>(t)] / hcount[static_cast<std::size_t>(t)]
                         : 0.0;
    m.self[t] = h / (8.0 * M_PI) * inverse_distance_integral(m.centroid.col(t), m.vtx(t, 0), m.vtx(t, 1), m.vtx(t, 2));
  }
  m.total_area = m.area.sum();
  m.size2.resize(n);
  for (int t = 0; t < n; ++t)
    m.size2[t] = std::max({(m.vtx(t, 1) - m.vtx(t, 0)).squaredNorm(), (m.vtx(t, 2) - m.vtx(t, 1)).squaredNorm(),
                           (m.vtx(t, 0) - m.vtx(t, 2)).squaredNorm()});
  m.make_patches();
  m.corners.resize(9, n);
  for (int t = 0; t < n; ++t) m.corners.col(t) << m.vtx(t, 0), m.vtx(t, 1), m.vtx(t, 2);
  Eigen::MatrixXd k(n, n);
  parallel_for(n, [&](std::int64_t b, std::int64_t end) {
    for (std::int64_t i = b; i < end; ++i) {
      const Eigen::Vector3d ci = m.centroid.col(i), ni = m.normal.col(i);
      for (int j = 0; j < n; ++j) {
        double v;
        if (j == i) {
          v = -0.5 + m.self[i];
        } else {
          const Eigen::Vector3d dv = ci - m.centroid.col(j);
          const double d2 = dv.squaredNorm();
          v = d2 > kFar * kFar * m.size2[j] ? ni.dot(dv) * m.area[j] / (d2 * std::sqrt(d2) * kFour_pi)
                                            : ni.dot(m.near(ci, j)) / kFour_pi;
        }
        k(j, i) = v + m.area[j] / m.total_area;  // transposed: filled by columns of K^T
      }
    }
  });
  k.transposeInPlace();
  const double t0 = now_seconds();
  m.lu.compute(k);
  log::debug(fmt::format("boundary elements: {} x {} system factored in {:.1f} s", n, n, now_seconds() - t0));
  if (m.lu.singular()) throw Error("the boundary-element system of the conductor surface is singular");
}

const Mesh& BemModel::surface() const { return impl_->mesh; }

Eigen::VectorXd BemModel::charges(const Dipoles& d) const { return charges(std::vector<Dipoles>{d}).col(0); }

Eigen::MatrixXd BemModel::charges(const std::vector<Dipoles>& poses) const {
  const Impl& m = *impl_;
  Eigen::MatrixXd rhs(m.centroid.cols(), static_cast<Eigen::Index>(poses.size()));
  for (std::size_t s = 0; s < poses.size(); ++s) {
    const Eigen::Matrix3Xd ep = detail::primary_field_single(poses[s], m.centroid, kClusterFar);
    for (Eigen::Index i = 0; i < ep.cols(); ++i) rhs(i, static_cast<Eigen::Index>(s)) = -m.normal.col(i).dot(ep.col(i));
  }
  return m.lu.solve(rhs);
}

Eigen::Matrix3Xd BemModel::field(const Dipoles& d, const Eigen::Matrix3Xd& pts) const {
  return field(d, charges(d), pts);
}

Eigen::Matrix3Xd BemModel::field(const Dipoles& d, const Eigen::VectorXd& q, const Eigen::Matrix3Xd& pts,
                                 double cluster_far) const {
  if (q.size() != impl_->centroid.cols())
    throw Error(fmt::format("{} charges for a surface of {} triangles", q.size(), impl_->centroid.cols()));
  // Maps (clustered coil) are written in single precision: their sums are single precision too.
  if (cluster_far > 0) return detail::primary_field_single(d, pts, cluster_far) + impl_->secondary<float>(q, pts);
  return primary_field(d, pts) + impl_->secondary<double>(q, pts);
}

BemModel::Probe BemModel::probe(const Eigen::Matrix3Xd& pts) const {
  const Impl& m = *impl_;
  const Eigen::Index n = static_cast<Eigen::Index>(m.mesh.triangles.size());
  // G (3p x n): field at the points of a unit charge density on each triangle. Each pose then
  // costs its right-hand side, one LU solve and G q (cheaper than precomputing G K^-1 unless the
  // poses outnumber the 3p rows).
  Probe p;
  p.points = pts;
  p.model = this;
  p.secondary.resize(3 * pts.cols(), n);
  parallel_for(pts.cols(), [&](std::int64_t b, std::int64_t end) {
    for (std::int64_t i = b; i < end; ++i)
      for (Eigen::Index j = 0; j < n; ++j) {
        const Eigen::Vector3d dv = pts.col(i) - m.centroid.col(j);
        const double d2 = dv.squaredNorm();
        p.secondary.block<3, 1>(3 * i, j) = d2 > kFar * kFar * m.size2[j]
                                                ? Eigen::Vector3d(dv * (m.area[j] / (d2 * std::sqrt(d2) * kFour_pi)))
                                                : Eigen::Vector3d(m.near(pts.col(i), j) / kFour_pi);
      }
  });
  return p;
}

Eigen::Matrix3Xd BemModel::Probe::field(const Dipoles& d) const { return fields(std::vector<Dipoles>{d}).front(); }

std::vector<Eigen::Matrix3Xd> BemModel::Probe::fields(const std::vector<Dipoles>& poses) const {
  // All poses' charges in one solve (matrix-matrix work instead of one matrix-vector per pose).
  const Eigen::MatrixXd es = secondary * model->charges(poses);
  std::vector<Eigen::Matrix3Xd> out;
  out.reserve(poses.size());
  for (std::size_t s = 0; s < poses.size(); ++s) {
    Eigen::Matrix3Xd e = primary_field(poses[s], points);
    for (Eigen::Index i = 0; i < points.cols(); ++i) e.col(i) += es.block<3, 1>(3 * i, static_cast<Eigen::Index>(s));
    out.push_back(std::move(e));
  }
  return out;
}

bool BemModel::inside(const Eigen::Vector3d& p) const {
  const Impl& m = *impl_;
  // The solid angle of the whole surface: 4 pi inside, 0 outside. A patch of triangles farther
  // than kPatchFar of its radii counts as its vector area S (S.(C - p)/|C - p|^3, the leading term
  // of its solid angle); nearer patches go triangle by triangle, exactly. The decision has a
  // margin of 2 pi, far above the far patches' error.
  double omega = 0;
  for (std::size_t c = 0; c < m.patch_tris.size(); ++c) {
    const auto ci = static_cast<Eigen::Index>(c);
    const Eigen::Vector3d r = m.patch_centre.col(ci) - p;
    const double d = r.norm();
    if (d > kPatchFar * m.patch_radius[c]) {
      omega += m.patch_area.col(ci).dot(r) / (d * d * d);
      continue;
    }
    for (int t : m.patch_tris[c]) omega += solid_angle(p, m.vtx(t, 0), m.vtx(t, 1), m.vtx(t, 2));
  }
  return omega > 2.0 * M_PI;
}

void BemModel::check_geometry(const Dipoles& d, const Eigen::Matrix3Xd& pts) const {
  std::vector<char> bad_point(static_cast<std::size_t>(pts.cols()), 0),
      bad_dipole(static_cast<std::size_t>(d.position_mm.cols()), 0);
  parallel_for(pts.cols(), [&](std::int64_t b, std::int64_t end) {
    for (std::int64_t i = b; i < end; ++i) bad_point[static_cast<std::size_t>(i)] = !inside(pts.col(i));
  });
  for (Eigen::Index i = 0; i < pts.cols(); ++i)
    if (bad_point[static_cast<std::size_t>(i)])
      throw Error(fmt::format("point {} ({:.1f}, {:.1f}, {:.1f}) lies outside the conductor surface", i + 1, pts(0, i),
                              pts(1, i), pts(2, i)));
  parallel_for(d.position_mm.cols(), [&](std::int64_t b, std::int64_t end) {
    for (std::int64_t i = b; i < end; ++i) bad_dipole[static_cast<std::size_t>(i)] = inside(d.position_mm.col(i));
  });
  for (Eigen::Index i = 0; i < d.position_mm.cols(); ++i)
    if (bad_dipole[static_cast<std::size_t>(i)])
      throw Error(fmt::format(
          "the coil intersects the conductor: its dipole {} ({:.1f}, {:.1f}, {:.1f}) lies inside the surface", i + 1,
          d.position_mm(0, i), d.position_mm(1, i), d.position_mm(2, i)));
}

nlohmann::json BemModel::describe() const {
  const Impl& m = *impl_;
  return {{"model", "bem"},
          {"triangles", m.mesh.triangles.size()},
          {"vertices", m.mesh.vertices.size()},
          {"mean_edge_mm", std::round(m.mean_edge * 100) / 100},
          {"max_edge_mm", std::round(m.max_edge * 100) / 100},
          {"area_cm2", std::round(m.total_area) / 100},
          {"volume_ml", std::round(enclosed_volume_ml(m.mesh) * 10) / 10}};
}

Mesh geodesic_sphere(int f, const Eigen::Vector3d& centre, const Eigen::Vector3d& axes) {
  if (f < 1 || f > 64) throw Error(fmt::format("geodesic sphere frequency {} out of range 1..64", f));
  const double t = (1.0 + std::sqrt(5.0)) / 2.0;
  std::vector<Eigen::Vector3d> ico = {{-1, t, 0},  {1, t, 0},  {-1, -t, 0}, {1, -t, 0}, {0, -1, t},  {0, 1, t},
                                      {0, -1, -t}, {0, 1, -t}, {t, 0, -1},  {t, 0, 1},  {-t, 0, -1}, {-t, 0, 1}};
  const int faces[20][3] = {{0, 11, 5},  {0, 5, 1},  {0, 1, 7},  {0, 7, 10}, {0, 10, 11}, {1, 5, 9}, {5, 11, 4},
                            {11, 10, 2}, {10, 7, 6}, {7, 1, 8},  {3, 9, 4},  {3, 4, 2},   {3, 2, 6}, {3, 6, 8},
                            {3, 8, 9},   {4, 9, 5},  {2, 4, 11}, {6, 2, 10}, {8, 6, 7},   {9, 8, 1}};
  Mesh mesh;
  // Vertices shared between faces are merged through exact keys of their (i, j, k) lattice
  // coordinates on the icosahedron's edges: a point on an edge is keyed by the edge.
  std::map<std::array<long, 6>, int> index;
  auto vertex = [&](int fa, int i, int j) -> int {
    const int a = faces[fa][0], b = faces[fa][1], c = faces[fa][2];
    const int k = f - i - j;  // weights of a, b, c: k, i, j
    // canonical key: sorted (corner, weight) pairs with non-zero weights
    std::array<std::pair<int, int>, 3> w = {{{a, k}, {b, i}, {c, j}}};
    std::sort(w.begin(), w.end());
    std::array<long, 6> key{};
    int m = 0;
    for (const auto& [corner, weight] : w)
      if (weight != 0) {
        key[static_cast<std::size_t>(m++)] = corner;
        key[static_cast<std::size_t>(m++)] = weight;
      }
    for (; m < 6; ++m) key[static_cast<std::size_t>(m)] = -1;
    auto it = index.find(key);
    if (it != index.end()) return it->second;
    const Eigen::Vector3d p = (k * ico[static_cast<std::size_t>(a)] + i * ico[static_cast<std::size_t>(b)] +
                               j * ico[static_cast<std::size_t>(c)])
                                  .normalized();
    mesh.vertices.push_back(centre + p.cwiseProduct(axes));
    index.emplace(key, static_cast<int>(mesh.vertices.size() - 1));
    return static_cast<int>(mesh.vertices.size() - 1);
  };
  for (int fa = 0; fa < 20; ++fa)
    for (int i = 0; i < f; ++i)
      for (int j = 0; j < f - i; ++j) {
        mesh.triangles.push_back({vertex(fa, i, j), vertex(fa, i + 1, j), vertex(fa, i, j + 1)});
        if (i + j + 1 < f)
          mesh.triangles.push_back({vertex(fa, i + 1, j), vertex(fa, i + 1, j + 1), vertex(fa, i, j + 1)});
      }
  // Orient outwards.
  for (auto& tri : mesh.triangles) {
    const Eigen::Vector3d a = mesh.vertices[static_cast<std::size_t>(tri[0])],
                          b = mesh.vertices[static_cast<std::size_t>(tri[1])],
                          c = mesh.vertices[static_cast<std::size_t>(tri[2])];
    if ((b - a).cross(c - a).dot((a + b + c) / 3.0 - centre) < 0) std::swap(tri[1], tri[2]);
  }
  return mesh;
}

}  // namespace tmsplan::efield
