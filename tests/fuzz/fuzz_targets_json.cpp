// The targets.json reader (parse_targets, lib/plan), which protocol-export and efield read and a
// user may edit by hand. What it accepts must have unit scalp normals and handle directions and a
// proper rotation as the coil pose (the reader promises to orthonormalise or refuse).
#include <cmath>

#include "fuzz_common.hpp"
#include "tmsplan/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string json(fuzz::text(data, size));
  fuzz::accepts("parse_targets", [&] {
    const tmsplan::plan::Targets t = tmsplan::plan::parse_targets(json, "targets.json");
    for (const auto& target : t.targets) {
      if (std::abs(target.scalp_normal_ras.norm() - 1.0) > 1e-6)
        fuzz::finding("parse_targets", "scalp normal not unit");
      if (std::abs(target.handle_direction_ras.norm() - 1.0) > 1e-6)
        fuzz::finding("parse_targets", "handle direction not unit");
      const Eigen::Matrix3d r = target.coil_pose.m.topLeftCorner<3, 3>();
      if ((r.transpose() * r - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() > 1e-6 || r.determinant() < 0.0)
        fuzz::finding("parse_targets", "coil pose is not a proper rotation");
      for (double x : {target.cortical_ras.norm(), target.scalp_ras.norm(), target.coil_centre_ras.norm(),
                       target.scalp_to_cortex_mm})
        if (!std::isfinite(x)) fuzz::finding("parse_targets", "non-finite coordinate accepted");
    }
  });
  return 0;
}
