#include <catch2/catch.hpp>

#include "tmsplan/geometry.hpp"

using namespace tmsplan;

TEST_CASE("RAS <-> LPS flips x and y of points, directions and matrices", "[unit]") {
  const RasPoint p(10.5, -20.25, 33.0);
  const LpsPoint q = to_lps(p);
  CHECK(q.v.isApprox(Eigen::Vector3d(-10.5, 20.25, 33.0)));
  CHECK((to_ras(q).v - p.v).norm() < 1e-12);
  const RasVector d(0.0, 1.0, 0.0);
  CHECK(to_lps(d).v.isApprox(Eigen::Vector3d(0, -1, 0)));

  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.3, Eigen::Vector3d(1, 2, 3).normalized()).toRotationMatrix();
  m.topRightCorner<3, 1>() = Eigen::Vector3d(5, -7, 9);
  const RasMatrix pose(m);
  // A RAS->RAS map applied then converted equals the converted map applied to the converted point.
  const RasPoint moved = apply(pose, p);
  const LpsMatrix lps = to_lps(pose);
  const Eigen::Vector3d moved_lps = lps.m.topLeftCorner<3, 3>() * q.v + lps.m.topRightCorner<3, 1>();
  CHECK((to_ras(LpsPoint(moved_lps)).v - moved.v).norm() < 1e-9);
  CHECK((to_ras(lps).m - m).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("voxel -> RAS -> LPS -> RAS -> voxel round trips to 1e-6", "[unit]") {
  Eigen::Matrix4d a = Eigen::Matrix4d::Identity();
  a.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.4, Eigen::Vector3d(0.2, -1, 0.5).normalized()).toRotationMatrix() *
                            Eigen::Vector3d(0.9, 1.1, 1.4).asDiagonal();
  a.topRightCorner<3, 1>() = Eigen::Vector3d(-90, 120, -70);
  const RasMatrix vox2ras(a);
  const LpsMatrix vox2lps = vox2lps_from_vox2ras(vox2ras);
  for (const auto& ijk : {VoxelIndex(0, 0, 0), VoxelIndex(12.5, 200.25, 99), VoxelIndex(-3, 400, 7.75)}) {
    const RasPoint r = voxel_to_ras(vox2ras, ijk);
    const Eigen::Vector3d l = vox2lps.m.topLeftCorner<3, 3>() * ijk.v + vox2lps.m.topRightCorner<3, 1>();
    CHECK((to_lps(r).v - l).norm() < 1e-9);
    const RasPoint back = to_ras(LpsPoint(l));
    CHECK((ras_to_voxel(vox2ras, back).v - ijk.v).norm() < 1e-6);
  }
  CHECK((vox2ras_from_vox2lps(vox2lps).m - a).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("orthonormalize removes shear and keeps a right-handed frame", "[unit]") {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m(0, 1) = 0.02;
  m(2, 0) = -0.01;
  m.topRightCorner<3, 1>() = Eigen::Vector3d(1, 2, 3);
  const Eigen::Matrix4d o = orthonormalize(m);
  const Eigen::Matrix3d r = o.topLeftCorner<3, 3>();
  CHECK((r * r.transpose() - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(r.determinant() == Approx(1.0));
  CHECK(o.topRightCorner<3, 1>().isApprox(Eigen::Vector3d(1, 2, 3)));
  CHECK(angle_deg(Eigen::Vector3d(1, 0, 0), Eigen::Vector3d(0, 1, 0)) == Approx(90.0));
}
