// Field models that need no mesh: the primary field and the spherically symmetric conductor.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

#include "internal.hpp"
#include "tmsplan/data.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/parallel.hpp"

namespace tmsplan::efield {

namespace detail {
template <typename T> void PointBlockT<T>::load(const Eigen::Matrix3Xd& pts, std::int64_t blk) {
  first = blk * kSize;
  n = std::min<std::int64_t>(kSize, pts.cols() - first);
  lo = hi = pts.col(first);
  for (std::int64_t i = 0; i < kSize; ++i) {
    const std::int64_t src = first + std::min(i, n - 1);
    px[i] = static_cast<T>(pts(0, src)), py[i] = static_cast<T>(pts(1, src)), pz[i] = static_cast<T>(pts(2, src));
    ex[i] = ey[i] = ez[i] = 0;
    lo = lo.cwiseMin(pts.col(src)), hi = hi.cwiseMax(pts.col(src));
  }
}
template struct PointBlockT<double>;
template struct PointBlockT<float>;

std::string data_file(const std::string& relative) { return data_path(relative); }

nlohmann::json read_json(const std::string& path) {
  check_input_path(path);
  try {
    return nlohmann::json::parse(read_file(path, 16u << 20));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), path);
  }
}
}  // namespace detail

namespace {

constexpr std::int64_t kBlock = detail::PointBlock::kSize;

// m x R / |R|^3 of one dipole at q added to every point of the block.
template <typename T> void add_dipole(detail::PointBlockT<T>& pb, const double* q, const double* m) {
  const T qx = static_cast<T>(q[0]), qy = static_cast<T>(q[1]), qz = static_cast<T>(q[2]);
  const T mx = static_cast<T>(m[0]), my = static_cast<T>(m[1]), mz = static_cast<T>(m[2]);
  for (std::int64_t i = 0; i < kBlock; ++i) {
    const T rx = pb.px[i] - qx, ry = pb.py[i] - qy, rz = pb.pz[i] - qz;
    const T r2 = rx * rx + ry * ry + rz * rz;
    const T inv = T(1) / (r2 * std::sqrt(r2));
    pb.ex[i] += (my * rz - mz * ry) * inv;
    pb.ey[i] += (mz * rx - mx * rz) * inv;
    pb.ez[i] += (mx * ry - my * rx) * inv;
  }
}

template <typename T> void store_primary(const detail::PointBlockT<T>& pb, Eigen::Matrix3Xd& e) {
  for (std::int64_t i = 0; i < pb.n; ++i) {
    e(0, pb.first + i) = -detail::kPrimaryScale * pb.ex[i];
    e(1, pb.first + i) = -detail::kPrimaryScale * pb.ey[i];
    e(2, pb.first + i) = -detail::kPrimaryScale * pb.ez[i];
  }
}

template <typename T> Eigen::Matrix3Xd primary_all(const Dipoles& d, const Eigen::Matrix3Xd& pts) {
  Eigen::Matrix3Xd e(3, pts.cols());
  const Eigen::Index nd = d.position_mm.cols();
  const std::int64_t blocks = (pts.cols() + kBlock - 1) / kBlock;
  parallel_for(blocks, [&](std::int64_t b0, std::int64_t b1) {
    detail::PointBlockT<T> pb;
    for (std::int64_t blk = b0; blk < b1; ++blk) {
      pb.load(pts, blk);
      for (Eigen::Index k = 0; k < nd; ++k) add_dipole(pb, d.position_mm.col(k).data(), d.moment.col(k).data());
      store_primary(pb, e);
    }
  });
  return e;
}

template <typename T> Eigen::Matrix3Xd primary_clustered(const Dipoles& d, const Eigen::Matrix3Xd& pts, double far) {
  if (d.cluster_first.size() < 2) return primary_all<T>(d, pts);
  // Each cluster as one dipole: total moment at the centre weighted by |moment|; its radius.
  const std::size_t nc = d.cluster_first.size() - 1;
  Eigen::Matrix3Xd cpos(3, static_cast<Eigen::Index>(nc)), cmom(3, static_cast<Eigen::Index>(nc));
  std::vector<double> reach(nc);
  for (std::size_t c = 0; c < nc; ++c) {
    Eigen::Vector3d p(0, 0, 0), m(0, 0, 0);
    double w = 0;
    for (int i = d.cluster_first[c]; i < d.cluster_first[c + 1]; ++i) {
      const Eigen::Index k = d.cluster_order[static_cast<std::size_t>(i)];
      const double wk = d.moment.col(k).norm();
      p += wk * d.position_mm.col(k);
      m += d.moment.col(k);
      w += wk;
    }
    p = w > 0 ? Eigen::Vector3d(p / w)
              : d.position_mm.col(d.cluster_order[static_cast<std::size_t>(d.cluster_first[c])]);
    double r = 0;
    for (int i = d.cluster_first[c]; i < d.cluster_first[c + 1]; ++i)
      r = std::max(r, (d.position_mm.col(d.cluster_order[static_cast<std::size_t>(i)]) - p).norm());
    cpos.col(static_cast<Eigen::Index>(c)) = p;
    cmom.col(static_cast<Eigen::Index>(c)) = m;
    reach[c] = far * r;
  }
  Eigen::Matrix3Xd e(3, pts.cols());
  const std::int64_t blocks = (pts.cols() + kBlock - 1) / kBlock;
  parallel_for(blocks, [&](std::int64_t b0, std::int64_t b1) {
    detail::PointBlockT<T> pb;
    for (std::int64_t blk = b0; blk < b1; ++blk) {
      pb.load(pts, blk);
      for (std::size_t c = 0; c < nc; ++c) {
        const auto ci = static_cast<Eigen::Index>(c);
        if (std::sqrt(pb.distance2(cpos.col(ci))) > reach[c]) {
          add_dipole(pb, cpos.col(ci).data(), cmom.col(ci).data());
          continue;
        }
        for (int i = d.cluster_first[c]; i < d.cluster_first[c + 1]; ++i) {
          const Eigen::Index k = d.cluster_order[static_cast<std::size_t>(i)];
          add_dipole(pb, d.position_mm.col(k).data(), d.moment.col(k).data());
        }
      }
      store_primary(pb, e);
    }
  });
  return e;
}

}  // namespace

Eigen::Matrix3Xd primary_field(const Dipoles& d, const Eigen::Matrix3Xd& pts) { return primary_all<double>(d, pts); }

Eigen::Matrix3Xd primary_field_clustered(const Dipoles& d, const Eigen::Matrix3Xd& pts, double far) {
  return primary_clustered<double>(d, pts, far);
}

Eigen::Matrix3Xd detail::primary_field_single(const Dipoles& d, const Eigen::Matrix3Xd& pts, double far) {
  return primary_clustered<float>(d, pts, far);
}

// Heller & van Hulsteyn 1992: for a dipole m at r2 outside a spherically symmetric conductor
// (centre at the origin), the field at r1 inside is
//   E = -(mu0/4pi) dI/dt / F^2 [ F (r1 x m) - ((m . grad F) r1) x r2 ],
//   a = r2 - r1, F = |a| (|r2||a| + r2.a),
//   grad F = (|a|^2/|r2| + 2|a| + 2|r2| + r2.a/|a|) r2 - (|a| + 2|r2| + r2.a/|a|) r1.
// It has no radial component and does not depend on the radius or the conductivity profile.
Eigen::Matrix3Xd SphereModel::field(const Dipoles& d, const Eigen::Matrix3Xd& pts) const {
  Eigen::Matrix3Xd e(3, pts.cols());
  const Eigen::Matrix3Xd dpos = d.position_mm.colwise() - centre_;
  const Eigen::Index nd = dpos.cols();
  Eigen::VectorXd r2n(nd);
  for (Eigen::Index k = 0; k < nd; ++k) r2n[k] = dpos.col(k).norm();
  parallel_for(pts.cols(), [&](std::int64_t b, std::int64_t end) {
    for (std::int64_t i = b; i < end; ++i) {
      const Eigen::Vector3d r1 = pts.col(i) - centre_;
      Eigen::Vector3d acc(0, 0, 0);
      for (Eigen::Index k = 0; k < nd; ++k) {
        const Eigen::Vector3d r2 = dpos.col(k);
        const Eigen::Vector3d m = d.moment.col(k);
        const Eigen::Vector3d a = r2 - r1;
        const double na = a.norm(), nr2 = r2n[k];
        const double r2a = r2.dot(a);
        const double f = na * (nr2 * na + r2a);
        const Eigen::Vector3d gf = (na * na / nr2 + 2 * na + 2 * nr2 + r2a / na) * r2 - (na + 2 * nr2 + r2a / na) * r1;
        acc += (f * r1.cross(m) - (m.dot(gf) * r1).cross(r2)) / (f * f);
      }
      e.col(i) = -detail::kPrimaryScale * acc;
    }
  });
  return e;
}

void SphereModel::check_geometry(const Dipoles& d, const Eigen::Matrix3Xd& pts) const {
  double dmin = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < d.position_mm.cols(); ++k)
    dmin = std::min(dmin, (d.position_mm.col(k) - centre_).norm());
  const double limit = radius_ > 0 ? std::min(radius_, dmin) : dmin;
  if (radius_ > 0 && dmin <= radius_)
    throw Error(fmt::format("the coil reaches into the conductor: a dipole lies {:.1f} mm from the sphere's centre, "
                            "inside its radius {:.1f} mm",
                            dmin, radius_));
  for (Eigen::Index i = 0; i < pts.cols(); ++i) {
    const double r = (pts.col(i) - centre_).norm();
    if (r >= limit)
      throw Error(fmt::format("point {} ({:.1f}, {:.1f}, {:.1f}) lies outside the conductor: {:.1f} mm from the "
                              "sphere's centre, the conductor ends at {:.1f} mm",
                              i + 1, pts(0, i), pts(1, i), pts(2, i), r, limit));
  }
}

nlohmann::json SphereModel::describe() const {
  nlohmann::json j = {{"model", "sphere"}, {"centre_ras", {centre_.x(), centre_.y(), centre_.z()}}};
  if (radius_ > 0) j["radius_mm"] = radius_;
  return j;
}

SphereModel fit_sphere(const std::vector<Eigen::Vector3d>& points) {
  if (points.size() < 10) throw Error(fmt::format("too few surface points to fit a sphere ({})", points.size()));
  // |p|^2 = 2 c.p + k, linear least squares in (c, k), centred for conditioning.
  Eigen::Vector3d mean(0, 0, 0);
  for (const auto& p : points) mean += p;
  mean /= static_cast<double>(points.size());
  Eigen::MatrixXd a(points.size(), 4);
  Eigen::VectorXd b(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Eigen::Vector3d q = points[i] - mean;
    a.row(static_cast<Eigen::Index>(i)) << 2 * q.x(), 2 * q.y(), 2 * q.z(), 1.0;
    b[static_cast<Eigen::Index>(i)] = q.squaredNorm();
  }
  const Eigen::Vector4d s = a.colPivHouseholderQr().solve(b);
  const Eigen::Vector3d c = s.head<3>();
  const double r2 = s[3] + c.squaredNorm();
  if (!(r2 > 0) || !s.allFinite()) throw Error("the surface under the coil is flat or degenerate: no sphere fits it");
  return SphereModel(c + mean, std::sqrt(r2));
}

std::string format_points_field(const Eigen::Matrix3Xd& p, const Eigen::Matrix3Xd& e) {
  std::string out;
  out.reserve(static_cast<std::size_t>(p.cols()) * 80);
  for (Eigen::Index i = 0; i < p.cols(); ++i)
    out += fmt::format("{:.4f},{:.4f},{:.4f},{:.6g},{:.6g},{:.6g}\n", p(0, i), p(1, i), p(2, i), e(0, i), e(1, i),
                       e(2, i));
  return out;
}

}  // namespace tmsplan::efield
