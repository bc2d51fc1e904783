// bench-eval: figures for the benchmark and the regression tests.
//   bench-eval dice A B                       Dice of two masks on one grid (>0.5 inside)
//   bench-eval labels-dice A B L...           Dice per label value
//   bench-eval copy-dice COPIES NAME ORIG COPY [--labels L...]
//       brings a copy's mask (or labels) back to the original grid through the known transform
//       of copy NAME (copies.json from make-samples) and prints Dice against ORIG.
//   bench-eval copy-targets COPIES NAME ORIG_TARGETS COPY_TARGETS
//       each target of the copy brought back: cortical / scalp / prior distance (mm), coil z angle
//   bench-eval target-checks SUBJECT_DIR TARGETS
//       per target: cortical point in grey matter (dseg == 2 at its voxel; segment's GM fraction at
//       the point, trilinear, last column), distance of the scalp point to the
//       head-mask boundary in voxels, angle (deg) between the coil z and minus an independent local
//       scalp normal (plane fitted to the head-mask boundary voxels within 10 mm)
#include <filesystem>
#include <iostream>

#include <Eigen/Eigenvalues>

#include "sample_transform.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/resample.hpp"

using namespace tmsplan;

namespace {
Image read_any(const std::string& p) {
  ReadOptions ro;
  ro.refuse_constant = false;
  return read_image(p, ro);
}
Mask label_mask(const Image& im, int label) {
  Mask m(im.grid, 0);
  for (std::size_t i = 0; i < im.data.size(); ++i)
    m.data[i] = label < 0 ? (im.data[i] > 0.5f) : (std::lround(im.data[i]) == label);
  return m;
}
samples::KnownTransform find_copy(const std::string& copies, const std::string& name) {
  const auto index = nlohmann::json::parse(read_file(copies));
  for (const auto& c : index.at("copies"))
    if (c.at("name") == name) return samples::KnownTransform::from_json(c);
  throw Error("no copy named " + name, copies);
}

// bench-eval target-checks SUBJECT_DIR TARGETS: one line per target (see the top of this file).
void target_checks(const std::string& dir, const std::string& targets) {
  const Image dseg = read_any(dir + "/dseg.nii.gz");
  const std::string fraction_path = dir + "/probseg_gm.nii.gz";
  const Image fraction = std::filesystem::exists(fraction_path) ? read_any(fraction_path) : Image();
  const Mask head = label_mask(read_any(dir + "/head_mask.nii.gz"), -1);
  const auto doc = nlohmann::json::parse(read_file(targets));
  const Grid& g = head.grid;
  const Eigen::Matrix4d r2v = g.vox2ras.m.inverse();
  auto vec = [](const nlohmann::json& v) { return Eigen::Vector3d(v[0], v[1], v[2]); };
  auto voxel = [&](const Eigen::Vector3d& p) {
    return (r2v.topLeftCorner<3, 3>() * p + r2v.topRightCorner<3, 1>()).eval();
  };
  auto is_head = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return g.inside(i, j, k) && head(i, j, k); };
  const double vox = g.spacing_mm().maxCoeff();
  for (const auto& t : doc.at("targets")) {
    const Eigen::Vector3d c = voxel(vec(t.at("cortical_ras")));
    const auto ci = std::lround(c[0]), cj = std::lround(c[1]), ck = std::lround(c[2]);
    const bool in_gm = dseg.grid.inside(ci, cj, ck) && std::lround(dseg(ci, cj, ck)) == 2;
    // segment's grey-matter fraction at the point itself (trilinear; -1 without probseg_gm)
    const double gm_fraction = fraction.data.empty() ? -1.0 : sample(fraction, c, Interp::Linear);
    // Boundary voxels (inside, with an outside 6-neighbour) within 10 mm of the scalp point.
    const Eigen::Vector3d s = vec(t.at("scalp_ras")), sv = voxel(s);
    const int reach = int(std::ceil(10.0 / g.spacing_mm().minCoeff())) + 1;
    std::vector<Eigen::Vector3d> pts;
    double nearest = 1e9;
    for (std::int64_t k = std::lround(sv[2]) - reach; k <= std::lround(sv[2]) + reach; ++k)
      for (std::int64_t j = std::lround(sv[1]) - reach; j <= std::lround(sv[1]) + reach; ++j)
        for (std::int64_t i = std::lround(sv[0]) - reach; i <= std::lround(sv[0]) + reach; ++i) {
          if (!is_head(i, j, k)) continue;
          if (is_head(i - 1, j, k) && is_head(i + 1, j, k) && is_head(i, j - 1, k) && is_head(i, j + 1, k) &&
              is_head(i, j, k - 1) && is_head(i, j, k + 1))
            continue;
          const Eigen::Vector3d p = g.ras(i, j, k).v;
          nearest = std::min(nearest, (p - s).norm());
          if ((p - s).norm() <= 10.0) pts.push_back(p);
        }
    double angle = 180.0;
    if (pts.size() >= 3) {
      Eigen::Vector3d mean = Eigen::Vector3d::Zero();
      for (const auto& p : pts) mean += p;
      mean /= double(pts.size());
      Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
      for (const auto& p : pts) cov += (p - mean) * (p - mean).transpose();
      Eigen::Vector3d n = Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d>(cov).eigenvectors().col(0);
      const Eigen::Vector3d z(t["coil_pose_ras"][0][2], t["coil_pose_ras"][1][2], t["coil_pose_ras"][2][2]);
      if (n.dot(z) < 0) n = -n;  // the plane's normal, pointing into the head like z
      angle = angle_deg(z, n);
    }
    std::printf(
        "%s in_gm %d scalp_to_boundary_vox %.2f coil_z_vs_plane_normal_deg %.2f depth_mm %.2f gm_fraction %.2f\n",
        t.at("name").get<std::string>().c_str(), in_gm ? 1 : 0, nearest / vox, angle,
        double(t.at("scalp_to_cortex_mm")), gm_fraction);
  }
}
}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() >= 3 && a[0] == "dice") {
      std::printf("%.4f\n", dice(label_mask(read_any(a[1]), -1), label_mask(read_any(a[2]), -1)));
      return 0;
    }
    if (a.size() >= 4 && a[0] == "labels-dice") {
      const Image x = read_any(a[1]), y = read_any(a[2]);
      for (std::size_t i = 3; i < a.size(); ++i) {
        const int l = std::stoi(a[i]);
        std::printf("%d %.4f\n", l, dice(label_mask(x, l), label_mask(y, l)));
      }
      return 0;
    }
    if (a.size() >= 5 && a[0] == "copy-dice") {
      const auto t = find_copy(a[1], a[2]);
      const Image orig = read_any(a[3]), copy = read_any(a[4]);
      // Each original voxel p sits at forward(p) in the copy: nearest-neighbour labels.
      const Image back = resample(
          copy, orig.grid, [&](const Eigen::Vector3d& p) { return t.forward(p); }, Interp::Nearest);
      std::vector<int> labels;
      for (std::size_t i = 5; i < a.size(); ++i)
        if (a[i] != "--labels") labels.push_back(std::stoi(a[i]));
      if (labels.empty()) labels.push_back(-1);
      for (int l : labels) std::printf("%d %.4f\n", l, dice(label_mask(orig, l), label_mask(back, l)));
      return 0;
    }
    if (a.size() >= 5 && a[0] == "copy-targets") {
      // Each target of the copy, brought back to the original through the known transform,
      // against the same target picked on the original: distance (mm) and coil z angle (deg).
      const auto t = find_copy(a[1], a[2]);
      const auto orig = nlohmann::json::parse(read_file(a[3])), copy = nlohmann::json::parse(read_file(a[4]));
      auto vec = [](const nlohmann::json& v) { return Eigen::Vector3d(v[0], v[1], v[2]); };
      for (const auto& c : copy.at("targets")) {
        for (const auto& o : orig.at("targets")) {
          if (o.at("name") != c.at("name")) continue;
          const Eigen::Vector3d q = vec(c.at("cortical_ras")), back = t.backward(q);
          const Eigen::Vector3d zc(c["coil_pose_ras"][0][2], c["coil_pose_ras"][1][2], c["coil_pose_ras"][2][2]);
          const Eigen::Vector3d zo(o["coil_pose_ras"][0][2], o["coil_pose_ras"][1][2], o["coil_pose_ras"][2][2]);
          const Eigen::Vector3d s = vec(c.at("scalp_ras")), sback = t.backward(s);
          // The coil z is minus a surface normal: normals map with the inverse transpose of the
          // Jacobian of the copy -> original map (at the scalp point; exact for rigid copies too).
          Eigen::Matrix3d jac;
          for (int a = 0; a < 3; ++a) {
            Eigen::Vector3d h = Eigen::Vector3d::Zero();
            h[a] = 0.5;
            jac.col(a) = t.backward(s + h) - t.backward(s - h);
          }
          const Eigen::Vector3d zback = (jac.inverse().transpose() * zc).normalized();
          const double prior_mm = (t.backward(vec(c.at("prior_ras"))) - vec(o.at("prior_ras"))).norm();
          std::printf("%s cortical_mm %.2f scalp_mm %.2f coil_z_deg %.2f depth_mm %.2f/%.2f prior_mm %.2f\n",
                      c.at("name").get<std::string>().c_str(), (back - vec(o.at("cortical_ras"))).norm(),
                      (sback - vec(o.at("scalp_ras"))).norm(), angle_deg(zback, zo), double(o.at("scalp_to_cortex_mm")),
                      double(c.at("scalp_to_cortex_mm")), prior_mm);
        }
      }
      return 0;
    }
    if (a.size() >= 3 && a[0] == "target-checks") {
      target_checks(a[1], a[2]);
      return 0;
    }
    std::fprintf(stderr,
                 "usage: bench-eval dice A B | labels-dice A B L... | copy-dice COPIES NAME ORIG COPY [--labels L...] "
                 "| copy-targets COPIES NAME ORIG_TARGETS COPY_TARGETS | target-checks SUBJECT_DIR TARGETS\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-eval: error: %s\n", describe(e).c_str());
    return 1;
  }
}
