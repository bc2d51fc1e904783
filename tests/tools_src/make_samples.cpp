// make-samples: scanner-like copies of the Colin27 head with known transforms (see
// data/samples/copies.json), written into a build folder for tests and benchmarks.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <vector>

#include "sample_transform.hpp"
#include "tmsplan/cli.hpp"
#include "tmsplan/data.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/resample.hpp"

namespace fs = std::filesystem;
using namespace tmsplan;

namespace {
Eigen::Vector3d axis_vector(char c) {
  switch (c) {
  case 'R':
    return {1, 0, 0};
  case 'L':
    return {-1, 0, 0};
  case 'A':
    return {0, 1, 0};
  case 'P':
    return {0, -1, 0};
  case 'S':
    return {0, 0, 1};
  case 'I':
    return {0, 0, -1};
  }
  throw Error(std::string("bad axis letter ") + c);
}

Eigen::Matrix3d rotation_deg(const nlohmann::json& r) {
  const double d2r = M_PI / 180.0;
  return (Eigen::AngleAxisd(double(r[2]) * d2r, Eigen::Vector3d::UnitZ()) *
          Eigen::AngleAxisd(double(r[1]) * d2r, Eigen::Vector3d::UnitY()) *
          Eigen::AngleAxisd(double(r[0]) * d2r, Eigen::Vector3d::UnitX()))
      .toRotationMatrix();
}

Grid copy_grid(const Grid& src, const samples::KnownTransform& t, const nlohmann::json& c) {
  const std::string axes = c.at("axes");
  Eigen::Matrix3d dir;
  for (int a = 0; a < 3; ++a) dir.col(a) = axis_vector(axes.at(static_cast<std::size_t>(a)));
  dir = rotation_deg(c.at("grid_tilt_deg")) * dir;
  const Eigen::Vector3d spacing(c.at("voxel_mm")[0], c.at("voxel_mm")[1], c.at("voxel_mm")[2]);
  Eigen::Vector3d lo = Eigen::Vector3d::Constant(1e9), hi = -lo;
  for (int corner = 0; corner < 8; ++corner) {
    const Eigen::Vector3d ijk((corner & 1) ? src.dim[0] - 1 : 0, (corner & 2) ? src.dim[1] - 1 : 0,
                              (corner & 4) ? src.dim[2] - 1 : 0);
    const Eigen::Vector3d q = t.forward(voxel_to_ras(src.vox2ras, VoxelIndex(ijk)).v);
    const Eigen::Vector3d local = dir.transpose() * q;
    lo = lo.cwiseMin(local);
    hi = hi.cwiseMax(local);
  }
  Grid g;
  for (int a = 0; a < 3; ++a) g.dim[a] = static_cast<std::int64_t>(std::ceil((hi[a] - lo[a]) / spacing[a])) + 1;
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() = dir * spacing.asDiagonal();
  g.vox2ras.m.topRightCorner<3, 1>() = dir * lo;
  return g;
}
// The extra-brain tissue made thicker or thinner: along each ray from the head centre, points
// more than 2 mm beyond the brain's outer edge (`brain`, the original's brain mask) move outwards
// by `scale` times their distance from there; the brain and 2 mm around it stay (the known answer
// for brain points is unchanged). Returns copy-side original coordinates -> source coordinates.
class ExtraBrainScale {
 public:
  ExtraBrainScale(const Mask& brain, Eigen::Vector3d centre, double scale) : centre_(centre), scale_(scale) {
    const Eigen::Matrix4d ras2vox = brain.grid.vox2ras.m.inverse();
    edge_.assign(std::size_t(kTheta * kPhi), 0.0);
    for (int it = 0; it < kTheta; ++it)
      for (int ip = 0; ip < kPhi; ++ip) {
        const Eigen::Vector3d d = direction(it, ip);
        double last = 0;
        for (double r = 0; r < 150; r += 0.25) {
          const Eigen::Vector3d p = centre_ + r * d;
          const Eigen::Vector3d v = ras2vox.topLeftCorner<3, 3>() * p + ras2vox.topRightCorner<3, 1>();
          const std::int64_t i = std::lround(v[0]), j = std::lround(v[1]), k = std::lround(v[2]);
          if (i < 0 || j < 0 || k < 0 || i >= brain.grid.dim[0] || j >= brain.grid.dim[1] || k >= brain.grid.dim[2])
            continue;
          if (brain(i, j, k)) last = r;
        }
        edge_[std::size_t(it * kPhi + ip)] = last;
      }
  }
  Eigen::Vector3d operator()(const Eigen::Vector3d& p) const {
    const Eigen::Vector3d x = p - centre_;
    const double rho = x.norm();
    if (rho < 1e-9) return p;
    const Eigen::Vector3d d = x / rho;
    const double keep = edge(d) + 2.0;
    if (rho <= keep) return p;
    return centre_ + d * (keep + (rho - keep) / scale_);
  }

 private:
  static constexpr int kTheta = 90, kPhi = 180;  // 2-degree bins
  Eigen::Vector3d direction(double it, double ip) const {
    const double th = (it + 0.5) * M_PI / kTheta, ph = (ip + 0.5) * 2 * M_PI / kPhi;
    return {std::sin(th) * std::cos(ph), std::sin(th) * std::sin(ph), std::cos(th)};
  }
  double edge(const Eigen::Vector3d& d) const {  // bilinear in (theta, phi), phi periodic
    const double ft = std::acos(std::clamp(d.z(), -1.0, 1.0)) * kTheta / M_PI - 0.5;
    double fp = std::atan2(d.y(), d.x()) * kPhi / (2 * M_PI) - 0.5;
    if (fp < 0) fp += kPhi;
    const double t0 = std::clamp(std::floor(ft), 0.0, double(kTheta - 1)), wt = std::clamp(ft - t0, 0.0, 1.0);
    const int t1 = std::min(int(t0) + 1, kTheta - 1);
    const int p0 = int(std::floor(fp)) % kPhi, p1 = (p0 + 1) % kPhi;
    const double wp = fp - std::floor(fp);
    auto at = [&](int t, int q) { return edge_[std::size_t(t * kPhi + q)]; };
    return (1 - wt) * ((1 - wp) * at(int(t0), p0) + wp * at(int(t0), p1)) +
           wt * ((1 - wp) * at(t1, p0) + wp * at(t1, p1));
  }
  Eigen::Vector3d centre_;
  double scale_;
  std::vector<double> edge_;
};
}  // namespace

int main(int argc, char** argv) {
  cli::Tool tool("make-samples", "Makes scanner-like copies of a head (Colin27 unless --source) with known transforms");
  std::string out_dir, spec_path = tmsplan::data_path("samples/copies.json"), source_override;
  tool.app().add_option("--out", out_dir, "Output folder")->required();
  tool.app().add_option("--spec", spec_path, "Copies to make (JSON)");
  tool.app().add_option("--source", source_override, "The head to copy, instead of the spec's \"source\"");
  return tool.run(argc, argv, [&] {
    const std::string spec_text = read_file(spec_path);
    auto spec = nlohmann::json::parse(spec_text);
    if (!source_override.empty()) spec["source"] = source_override;
    if (!spec.contains("source") || !spec["source"].is_string())
      throw Error("no \"source\" in the spec: give the head to copy with --source", spec_path);
    const std::string stamp = sha256_bytes(spec_text + "\n" + std::string(spec["source"]));
    fs::create_directories(out_dir);
    const std::string index_path = out_dir + "/copies.json";
    if (fs::exists(index_path)) {
      const auto old = nlohmann::json::parse(read_file(index_path));
      if (old.value("spec_sha256", "") == stamp) {
        log::info("samples up to date in " + out_dir);
        return;
      }
    }
    const std::string source = spec.at("source");
    const Image head = read_image(source);
    float vmax = 0;
    for (float v : head.data) vmax = std::max(vmax, v);
    nlohmann::json index = spec;
    index["spec_sha256"] = stamp;
    for (auto& c : index["copies"]) {
      const auto t = samples::KnownTransform::from_json(c);
      const Grid g = copy_grid(head.grid, t, c);
      std::unique_ptr<ExtraBrainScale> extra;
      if (c.value("extra_brain_scale", 1.0) != 1.0)
        extra = std::make_unique<ExtraBrainScale>(read_mask(spec.at("source_brain"), &head.grid), t.centre,
                                                  double(c.at("extra_brain_scale")));
      Image copy = resample(
          head, g, [&](const Eigen::Vector3d& q) { return extra ? (*extra)(t.backward(q)) : t.backward(q); },
          Interp::Linear);
      const double bias = c.value("bias", 0.0), noise = c.value("noise", 0.0);
      std::mt19937 rng(c.value("seed", 1));
      std::normal_distribution<double> gauss(0.0, 1.0);
      for (std::int64_t k = 0; k < g.dim[2]; ++k)
        for (std::int64_t j = 0; j < g.dim[1]; ++j)
          for (std::int64_t i = 0; i < g.dim[0]; ++i) {
            const Eigen::Vector3d q = g.ras(i, j, k).v;
            const double field = 1.0 + bias * (0.6 * q[0] / 80.0 - 0.4 * q[2] / 80.0 + 0.5 * std::sin(q[1] / 60.0));
            const double n1 = noise * vmax * gauss(rng), n2 = noise * vmax * gauss(rng);
            const double v = copy(i, j, k) * std::max(0.3, field);
            copy(i, j, k) = static_cast<float>(std::sqrt((v + n1) * (v + n1) + n2 * n2));  // Rician
          }
      const std::string name = c.at("name");
      const std::string path = out_dir + "/" + name + ".nii.gz";
      WriteOptions wo;
      wo.force = true;
      wo.type = DiskType::Int16;
      wo.description = "tmsplan sample " + name;
      Image scaled = copy;
      // int16 keeps the noise texture: x16 for an 8-bit source like Colin27, less for a source whose
      // values would overflow int16 (the brightest voxel of the source lands at 20000 at most).
      const float gain = std::min(16.0f, 20000.0f / vmax);
      for (auto& v : scaled.data) v *= gain;
      write_image(path, scaled, wo);
      c["path"] = path;
      Eigen::Matrix4d a = t.a;
      c["original_to_copy_affine"] = nlohmann::json::array();
      for (int r = 0; r < 4; ++r) c["original_to_copy_affine"].push_back({a(r, 0), a(r, 1), a(r, 2), a(r, 3)});
      log::info("wrote " + path);
    }
    write_file_atomic(index_path, index.dump(2) + "\n", true);
  });
}
