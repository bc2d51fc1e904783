#pragma once
// The known transform of a scanner-like copy (data/samples/copies.json), shared by make-samples
// and the tests: F maps a point of the original head to the same anatomy in the copy, B back.
#include <Eigen/Geometry>
#include <cmath>
#include <nlohmann/json.hpp>

namespace samples {

struct KnownTransform {
  Eigen::Matrix4d a = Eigen::Matrix4d::Identity();  // rigid part, original -> copy
  double warp_mm = 0.0;
  Eigen::Vector3d centre{0, -18, 18};  // the deformation is centred on the head

  static KnownTransform from_json(const nlohmann::json& c) {
    KnownTransform t;
    const auto r = c.at("rotation_deg");
    const double d2r = M_PI / 180.0;
    const Eigen::Matrix3d rot = (Eigen::AngleAxisd(double(r[2]) * d2r, Eigen::Vector3d::UnitZ()) *
                                 Eigen::AngleAxisd(double(r[1]) * d2r, Eigen::Vector3d::UnitY()) *
                                 Eigen::AngleAxisd(double(r[0]) * d2r, Eigen::Vector3d::UnitX()))
                                    .toRotationMatrix();
    const auto tr = c.at("translation_mm");
    // Rotate about the head centre, then shift.
    t.a.topLeftCorner<3, 3>() = rot;
    t.a.topRightCorner<3, 1>() = t.centre - rot * t.centre + Eigen::Vector3d(tr[0], tr[1], tr[2]);
    t.warp_mm = c.value("warp_mm", 0.0);
    return t;
  }

  // Smooth displacement in the original's frame, at most warp_mm per component, decaying outside
  // the head so the scalp stays in the field of view.
  Eigen::Vector3d u(const Eigen::Vector3d& p) const {
    if (warp_mm == 0.0) return Eigen::Vector3d::Zero();
    const Eigen::Vector3d x = (p - centre) / 70.0;
    const double envelope = std::exp(-0.5 * x.squaredNorm());
    return warp_mm * envelope *
           Eigen::Vector3d(std::sin(M_PI * x[1]) * std::cos(0.5 * M_PI * x[2]),
                           std::sin(M_PI * x[2]) * std::cos(0.5 * M_PI * x[0]),
                           std::sin(M_PI * x[0]) * std::cos(0.5 * M_PI * x[1]));
  }

  // copy world -> original world
  Eigen::Vector3d backward(const Eigen::Vector3d& q) const {
    const Eigen::Vector3d p0 = a.inverse().topLeftCorner<3, 3>() * q + a.inverse().topRightCorner<3, 1>();
    return p0 + u(p0);
  }

  // original world -> copy world (inverts backward by fixed-point iteration)
  Eigen::Vector3d forward(const Eigen::Vector3d& p) const {
    Eigen::Vector3d p0 = p;
    for (int it = 0; it < 100; ++it) {
      const Eigen::Vector3d next = p - u(p0);
      if ((next - p0).norm() < 1e-9) {
        p0 = next;
        break;
      }
      p0 = next;
    }
    return a.topLeftCorner<3, 3>() * p0 + a.topRightCorner<3, 1>();
  }
};

}  // namespace samples
