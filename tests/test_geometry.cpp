#include <catch2/catch.hpp>

#include "tmsplan/error.hpp"
#include "tmsplan/geometry.hpp"
#include "tmsplan/json_geometry.hpp"
#include "tmsplan/nifti_info.hpp"
#include "tmsplan/text.hpp"

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

TEST_CASE("points and poses in JSON: rounded on writing, checked on reading", "[unit]") {
  const Eigen::Vector3d v(1.234567, -0.00004, 1e3 / 3);
  const nlohmann::json jv = vec3_to_json(v);
  CHECK(jv.dump() == "[1.2346,-0.0,333.3333]");
  CHECK((vec3_from_json(jv, "v", "f.json") - v).norm() < 1e-4);
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.7, Eigen::Vector3d(1, 0, 1).normalized()).toRotationMatrix();
  m.topRightCorner<3, 1>() = Eigen::Vector3d(10.1234567, -3, 70);
  const Eigen::Matrix4d back = mat4_from_json(mat4_to_json(m), "pose", "f.json");
  CHECK((back - m).cwiseAbs().maxCoeff() <= 5e-7);
  const auto refused = [](const nlohmann::json& j, const std::string& says) {
    try {
      mat4_from_json(j, "t.coil_pose_ras", "f.json");
      FAIL("accepted " << j.dump());
    } catch (const Error& e) {
      CHECK(e.file() == "f.json");
      CHECK_THAT(e.what(), Catch::Contains(says));
    }
  };
  refused(nlohmann::json::array({1, 2, 3}), "t.coil_pose_ras: must be a 4x4 array of rows");
  refused(nlohmann::json::parse("[[1,0,0,0],[0,1,0],[0,0,1,0],[0,0,0,1]]"), "t.coil_pose_ras[1]: must be a row");
  refused(nlohmann::json::parse("[[1,0,0,0],[0,1,0,0],[0,0,1,\"x\"],[0,0,0,1]]"),
          "t.coil_pose_ras[2][3]: must be a number, got string");
  refused(nlohmann::json::parse("[[1,0,0,0],[0,1,0,0],[0,0,1,null],[0,0,0,1]]"), "NaN or infinity");
  CHECK_THROWS_AS(vec3_from_json(nlohmann::json::array({1, 2}), "v", "f.json"), Error);
}

TEST_CASE("markup escaping: the five XML characters, and the listed ones as character references", "[unit]") {
  CHECK(escape_markup("a<b & \"c\" > d") == "a&lt;b &amp; &quot;c&quot; &gt; d");
  CHECK(escape_markup("it's\tok\n") == "it's\tok\n");
  CHECK(escape_markup("it's\tok\n", "'\t\n") == "it&#39;s&#9;ok&#10;");
}

TEST_CASE("the NIfTI qform of a grid: quaternion of the nearest rotation, qfac and spacing", "[unit]") {
  Eigen::Matrix3d a = Eigen::AngleAxisd(0.4, Eigen::Vector3d::UnitZ()).toRotationMatrix();
  a.col(0) *= 1.5;
  a.col(2) *= -2.0;  // left-handed: qfac -1
  const NiftiQform q = nifti_qform(a);
  CHECK(q.qfac == -1.0);
  CHECK((q.spacing - Eigen::Vector3d(1.5, 1.0, 2.0)).norm() < 1e-12);
  CHECK((q.quatern - Eigen::Vector3d(0, 0, std::sin(0.2))).norm() < 1e-9);
}
