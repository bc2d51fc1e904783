// cortex-map: transform files (ITK affine text, NIfTI displacement fields in LPS) and their round
// trip, inverse consistency of the two-way map, the deformable registration against the known
// warp of a Colin27 copy, determinism, and the tool's refusals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <zlib.h>

#include "support.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/warp.hpp"
#include "tools_src/sample_transform.hpp"

using namespace tmsplan;

namespace {

const char* const kColinBrain = "/usr/share/mricron/templates/ch2bet.nii.gz";

struct ThreadsGuard {
  ~ThreadsGuard() { set_threads(0); }
};

Eigen::Matrix4d test_affine() {
  Eigen::Matrix4d a = Eigen::Matrix4d::Identity();
  a.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.2, Eigen::Vector3d(1, 2, 3).normalized()).toRotationMatrix() *
                            Eigen::Vector3d(1.05, 0.95, 1.1).asDiagonal();
  a(0, 1) += 0.03;
  a.topRightCorner<3, 1>() = Eigen::Vector3d(4, -7, 12);
  return a;
}

// A template-like grid (RAS, 2 mm) and a subject-like grid (LPS-ish, tilted, 1.5 x 1.5 x 1.8 mm).
Grid template_grid() {
  Grid g;
  g.dim = {48, 56, 48};
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() *= 2.0;
  g.vox2ras.m.topRightCorner<3, 1>() = Eigen::Vector3d(-47, -65, -40);
  return g;
}
Grid subject_grid() {
  Grid g;
  g.dim = {70, 76, 60};
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() =
      Eigen::AngleAxisd(0.15, Eigen::Vector3d(0.3, 1, 0.2).normalized()).toRotationMatrix() *
      Eigen::Vector3d(-1.5, -1.5, 1.8).asDiagonal();
  g.vox2ras.m.topRightCorner<3, 1>() = Eigen::Vector3d(55, 60, -50);
  return g;
}

// Smooth analytic displacement (mm) of amplitude `amp`, as a registration would make it.
Eigen::Vector3d smooth_u(const Eigen::Vector3d& p, double amp) {
  const Eigen::Vector3d x = p / 60.0;
  return amp * std::exp(-0.5 * x.squaredNorm()) *
         Eigen::Vector3d(std::sin(M_PI * x[1]), std::cos(0.5 * M_PI * x[2]) * x[0], std::sin(M_PI * x[0] + 0.3));
}

DisplacementField analytic_field(const Grid& g, double amp) {
  DisplacementField f(g);
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) {
        const Eigen::Vector3d v = smooth_u(g.ras(i, j, k).v, amp);
        for (int c = 0; c < 3; ++c) f.d[std::size_t(c)][g.index(i, j, k)] = static_cast<float>(v[c]);
      }
  return f;
}

std::vector<Eigen::Vector3d> random_points(int n, double half_extent, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uni(-half_extent, half_extent);
  std::vector<Eigen::Vector3d> pts;
  for (int i = 0; i < n; ++i) pts.emplace_back(uni(rng), uni(rng) - 10, uni(rng));
  return pts;
}

std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, std::size_t(n));
  gzclose(f);
  return out;
}

}  // namespace

TEST_CASE("ITK affine files hold the LPS form and read back the same RAS map", "[cortexmap][unit]") {
  const std::string dir = testing::temp_dir("cortexmap-affine");
  const Eigen::Matrix4d a = test_affine();
  write_itk_affine(dir + "/a.txt", a, false);
  const Eigen::Matrix4d back = read_itk_affine(dir + "/a.txt");
  CHECK((back - a).cwiseAbs().maxCoeff() < 1e-12);
  CHECK_THROWS_AS(write_itk_affine(dir + "/a.txt", a, false), Error);  // no overwrite without force

  // A RAS shift of (1, 2, 3) mm is the LPS shift (-1, -2, 3).
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  shift.topRightCorner<3, 1>() = Eigen::Vector3d(1, 2, 3);
  write_itk_affine(dir + "/shift.txt", shift, false);
  std::ifstream in(dir + "/shift.txt");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("#Insight Transform File V1.0") == 0);
  CHECK(text.find("Transform: AffineTransform_double_3_3") != std::string::npos);
  CHECK(text.find("Parameters: 1 0 0 0 1 0 0 0 1 -1 -2 3\n") != std::string::npos);

  // ITK's centre convention: T(x) = M (x - c) + t + c (as ANTs and Slicer write files).
  std::ofstream(dir + "/centred.txt") << "#Insight Transform File V1.0\n#Transform 0\n"
                                         "Transform: MatrixOffsetTransformBase_double_3_3\n"
                                         "Parameters: 0 -1 0 1 0 0 0 0 1 5 0 0\nFixedParameters: 10 20 30\n";
  const Eigen::Matrix4d c = read_itk_affine(dir + "/centred.txt");
  // LPS point (10, 20, 30) (the centre) maps to itself plus t: LPS (15, 20, 30) = RAS (-15, -20, 30).
  CHECK((apply_affine(c, Eigen::Vector3d(-10, -20, 30)) - Eigen::Vector3d(-15, -20, 30)).norm() < 1e-12);

  std::ofstream(dir + "/bad.txt") << "#Insight Transform File V1.0\nTransform: BSplineTransform_double_3_3\n";
  CHECK_THROWS_AS(read_itk_affine(dir + "/bad.txt"), Error);
  std::ofstream(dir + "/short.txt") << "#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\n"
                                       "Parameters: 1 0 0\n";
  CHECK_THROWS_AS(read_itk_affine(dir + "/short.txt"), Error);
}

TEST_CASE("displacement fields are 5D vector NIfTI in LPS and the saved map reads back to 1e-4 mm",
          "[cortexmap][unit]") {
  const std::string dir = testing::temp_dir("cortexmap-fields");
  // A constant RAS displacement (1, 2, 3) is stored as LPS (-1, -2, 3), component-major.
  DisplacementField constant(template_grid());
  std::fill(constant.d[0].begin(), constant.d[0].end(), 1.0f);
  std::fill(constant.d[1].begin(), constant.d[1].end(), 2.0f);
  std::fill(constant.d[2].begin(), constant.d[2].end(), 3.0f);
  write_displacement_field(dir + "/c.nii.gz", constant, Frame::Mni, false);
  const std::string raw = gunzip(dir + "/c.nii.gz");
  std::int16_t dim[8], intent, datatype;
  std::memcpy(dim, raw.data() + 40, sizeof dim);
  std::memcpy(&intent, raw.data() + 68, 2);
  std::memcpy(&datatype, raw.data() + 70, 2);
  CHECK(dim[0] == 5);
  CHECK(dim[4] == 1);
  CHECK(dim[5] == 3);
  CHECK(intent == 1007);  // NIFTI_INTENT_VECTOR: what ITK writes; ITK 5.2 misreads 1006 (DISPVECT)
  CHECK(datatype == 16);
  const std::size_t n = template_grid().voxels();
  REQUIRE(raw.size() == 352 + 12 * n);
  float first[3];
  for (int c = 0; c < 3; ++c) std::memcpy(&first[c], raw.data() + 352 + 4 * c * n, 4);
  CHECK(first[0] == -1.0f);
  CHECK(first[1] == -2.0f);
  CHECK(first[2] == 3.0f);
  const DisplacementField back = read_displacement_field(dir + "/c.nii.gz");
  CHECK(back.grid.same_as(template_grid(), 1e-5));
  CHECK(back.at_voxel(17) == Eigen::Vector3d(1, 2, 3));

  // A whole map: save, load, same mapping both ways.
  const Eigen::Matrix4d a = test_affine();
  DisplacementField u = analytic_field(template_grid(), 4.0);
  DisplacementField w = invert_to_subject_grid(a, u, subject_grid());
  const MniMap map(a, u, w);
  map.save(dir, false);
  CHECK_THROWS_AS(map.save(dir, false), Error);
  const MniMap loaded = MniMap::load(dir);
  double worst = 0;
  for (const auto& p : random_points(300, 45, 7)) {
    worst = std::max(worst, (loaded.to_subject(p) - map.to_subject(p)).norm());
    const Eigen::Vector3d q = map.to_subject(p);
    worst = std::max(worst, (loaded.to_mni(q) - map.to_mni(q)).norm());
  }
  CHECK(worst < 1e-4);

  // Broken inputs are refused with the file named.
  std::filesystem::copy_file(dir + "/to_mni_affine.txt", dir + "/from_mni_affine.txt",
                             std::filesystem::copy_options::overwrite_existing);
  try {
    MniMap::load(dir);
    FAIL("a pair of affines that are not inverse was accepted");
  } catch (const std::exception& e) {
    CHECK(describe(e).find("not inverse") != std::string::npos);
  }
  CHECK_THROWS_AS(read_displacement_field(dir + "/to_mni_affine.txt"), Error);

  // Damaged warps (the fast whole-file path must refuse them as the streaming path does): cut in
  // half, a corrupt byte run in the middle, and a header that promises far more data than the file.
  const std::string warp = dir + "/" + MniMap::kToMniWarp;
  auto damaged = [&](const std::string& name, const std::function<void(const std::string&)>& harm) {
    const std::string p = dir + "/" + name;
    std::filesystem::copy_file(warp, p, std::filesystem::copy_options::overwrite_existing);
    harm(p);
    try {
      read_displacement_field(p);
      FAIL(name << " was accepted");
    } catch (const std::exception& e) {
      CHECK(describe(e).find(p) != std::string::npos);
    }
  };
  damaged("half.nii.gz",
          [](const std::string& p) { std::filesystem::resize_file(p, std::filesystem::file_size(p) / 2); });
  damaged("corrupt.nii.gz", [](const std::string& p) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(std::filesystem::file_size(p) / 2));
    f.write("garbage-garbage-garbage-garbage!", 32);
  });
  damaged("huge.nii", [&](const std::string& p) {
    std::string bytes = gunzip(warp);
    const std::int16_t big = 30000;
    for (int d = 1; d <= 3; ++d) std::memcpy(&bytes[std::size_t(40 + 2 * d)], &big, 2);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  });
}

TEST_CASE("the two-way map is inverse-consistent within 0.1 mm where both fields exist", "[cortexmap][unit]") {
  const Eigen::Matrix4d a = test_affine();
  const DisplacementField u = analytic_field(template_grid(), 5.0);
  const DisplacementField w = invert_to_subject_grid(a, u, subject_grid());
  const MniMap map(a, u, w);
  double worst = 0, sum = 0, worst_back = 0;
  // Points whose image lies inside both grids (3 voxels from their edges): there both fields
  // exist (this analytic field does not fade at its border, so it jumps to zero there).
  auto inside = [](const Grid& g, const Eigen::Vector3d& p) {
    const Eigen::Vector3d v = ras_to_voxel(g.vox2ras, RasPoint(p)).v;
    for (int a = 0; a < 3; ++a)
      if (!(v[a] >= 3.0 && v[a] <= double(g.dim[a]) - 4.0)) return false;
    return true;
  };
  std::vector<Eigen::Vector3d> pts;
  for (const auto& p : random_points(2000, 45, 11))
    if (inside(template_grid(), p) && inside(subject_grid(), map.to_subject(p))) pts.push_back(p);
  REQUIRE(pts.size() > 300);
  for (const auto& p : pts) {
    const Eigen::Vector3d q = map.to_subject(p);
    const double e = (map.to_mni(q) - p).norm();
    worst = std::max(worst, e);
    sum += e;
    // And the other way round, from subject points.
    worst_back = std::max(worst_back, (map.to_subject(map.to_mni(q)) - q).norm());
  }
  INFO("mean " << sum / double(pts.size()) << " max " << worst << " back " << worst_back);
  CHECK(worst < 0.1);
  CHECK(sum / double(pts.size()) < 0.03);
  CHECK(worst_back < 0.1);
  // The fields are not trivial: the map moves points by millimetres beyond the affine.
  double moved = 0;
  for (const auto& p : pts) moved = std::max(moved, (map.to_subject(p) - apply_affine(a, p)).norm());
  CHECK(moved > 3.0);
  // Resampling through the map goes the same way as mapping points: an image of the template's x
  // coordinate, carried into the subject, holds at each subject voxel the MNI x of that voxel.
  Image mni_x(template_grid(), 0.0f);
  for (std::int64_t k = 0; k < mni_x.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < mni_x.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < mni_x.grid.dim[0]; ++i) mni_x(i, j, k) = float(mni_x.grid.ras(i, j, k).v[0]);
  const Image in_subject = map.template_to_subject_image(mni_x, subject_grid(), Interp::Linear, -999.0f);
  const Grid sg = subject_grid();
  const Eigen::Vector3d centre_mni = map.to_mni(sg.ras(35, 38, 30).v);
  CHECK(in_subject(35, 38, 30) == Approx(centre_mni[0]).margin(1e-3));
}

namespace {
// Known-answer figures of register_deformable on a Colin27 copy, with the subject's brain mask
// Colin27's own carried through the known transform (an exact input, so the figures are the
// registration's alone; the benchmark uses skull-strip's masks). Points: template brain voxels
// 1.5-4 mm inside the brain's edge, evenly spread.
struct KnownWarpFigures {
  std::size_t points = 0;
  double affine_mean = 0, mean = 0, worst = 0, inverse_mean = 0, inverse_worst = 0;
  double seconds = 0;
  DeformableResult r;
  /// Per point: error (mm), template point, distance (voxels) of the true subject point to the
  /// copy grid's nearest face (for the sweep's list of worst points).
  std::vector<std::tuple<double, Eigen::Vector3d, double>> errors;
};

// `mask_path` (optional): the subject's brain mask from a file on the copy's grid (skull-strip's)
// instead of the exact one.
KnownWarpFigures known_warp_figures(const std::string& dir, const std::string& name, const DeformableOptions& options,
                                    const std::string& mask_path = "") {
  nlohmann::json copy;
  const auto index = nlohmann::json::parse(std::ifstream(dir + "/copies.json"));
  for (const auto& c : index.at("copies"))
    if (c.at("name") == name) copy = c;
  REQUIRE(!copy.is_null());
  const auto known = samples::KnownTransform::from_json(copy);
  const Image subject = read_image(dir + "/" + name + ".nii.gz");
  const Image templ = read_image(testing::colin_head());
  const Mask templ_brain = read_mask(kColinBrain, &templ.grid);
  const Mask subject_brain =
      !mask_path.empty() ? read_mask(mask_path, &subject.grid)
                         : threshold(resample(
                                         to_image(templ_brain), subject.grid,
                                         [&](const Eigen::Vector3d& q) { return known.backward(q); }, Interp::Linear),
                                     0.5f);
  KnownWarpFigures f;
  const double t0 = now_seconds();
  f.r = register_deformable(subject, subject_brain, templ, templ_brain, options);
  f.seconds = now_seconds() - t0;
  const Image depth = distance_to(mask_not(templ_brain));
  std::vector<Eigen::Vector3d> pts;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < templ.grid.dim[2]; k += 2)
    for (std::int64_t j = 0; j < templ.grid.dim[1]; j += 2)
      for (std::int64_t i = 0; i < templ.grid.dim[0]; i += 2)
        if (depth(i, j, k) >= 1.5f && depth(i, j, k) <= 4.0f && (n++ % 97) == 0)
          pts.push_back(templ.grid.ras(i, j, k).v);
  f.points = pts.size();
  for (const auto& p : pts) {
    const Eigen::Vector3d truth = known.forward(p);
    f.affine_mean += (apply_affine(f.r.affine.template_to_subject, p) - truth).norm();
    const double e = (f.r.map.to_subject(p) - truth).norm();
    const Eigen::Vector3d tv = ras_to_voxel(subject.grid.vox2ras, RasPoint(truth)).v;
    double face = 1e9;
    for (int a = 0; a < 3; ++a) face = std::min({face, tv[a], double(subject.grid.dim[a] - 1) - tv[a]});
    f.errors.emplace_back(e, p, face);
    f.mean += e;
    f.worst = std::max(f.worst, e);
    const double ei = (f.r.map.to_mni(f.r.map.to_subject(p)) - p).norm();
    f.inverse_mean += ei;
    f.inverse_worst = std::max(f.inverse_worst, ei);
  }
  const double count = std::max<double>(1.0, double(pts.size()));
  f.affine_mean /= count, f.mean /= count, f.inverse_mean /= count;
  return f;
}

std::string describe(const KnownWarpFigures& f) {
  return fmt::format(
      "{} points: affine mean {:.3f}, deformable mean {:.3f} max {:.3f}; inverse consistency mean {:.4f} "
      "max {:.4f}; NCC {:.4f} -> {:.4f}, min Jacobian {:.3f}; {:.1f} s",
      f.points, f.affine_mean, f.mean, f.worst, f.inverse_mean, f.inverse_worst, f.r.ncc_affine, f.r.ncc_deformable,
      f.r.min_jacobian, f.seconds);
}
}  // namespace

TEST_CASE("deformable registration recovers the known warp of a Colin27 copy", "[cortexmap]") {
  const std::string dir = testing::samples_dir();
  if (dir.empty()) {
    testing::skip("samples absent (run make-samples --out " TMSPLAN_SAMPLES_DIR ")");
  }
  // Measured (2026-11-30): asl-warp mean 0.194 max 0.839 mm, pir-warp5 0.274 / 1.364. Before the
  // border ramp stopped at the brain (issue 16, fifth session) 0.197 / 1.175 and 0.279 / 2.034: the
  // worst point, MNI (-4, -43, -65), lay in the template grid's 12 mm bottom ramp; the bounds
  // below fail if the ramp reaches the brain again. Issue 16 asks <= 0.3 / <= 1.0 on pir-warp5: the
  // max was not met (cerebellum, MNI (48, -59, -53)). With the 1 mm level (2026-12-02, eighth
  // session): asl-warp 0.183 / 0.603, pir-warp5 0.207 / 0.753 mm, min Jacobian 0.73: the issue's
  // goal is the bound for both.
  for (const auto& [name, max_mm] :
       std::vector<std::pair<std::string, double>>{{"asl-warp", 1.0}, {"pir-warp5", 1.0}}) {
    const KnownWarpFigures f = known_warp_figures(dir, name, DeformableOptions{});
    INFO(name << ": " << describe(f));
    REQUIRE(f.points >= 100);
    CHECK(f.mean < 0.3);
    CHECK(f.worst < max_mm);
    CHECK(f.mean < 0.5 * f.affine_mean);
    CHECK(f.inverse_mean < 0.03);
    CHECK(f.inverse_worst < 0.1);
    CHECK(f.r.ncc_deformable > f.r.ncc_affine);
    CHECK(f.r.min_jacobian > 0.2);
  }
}

// Not run by default: known-answer figures for registration settings given in the environment
// (H16_LEVELS=4,2,1 H16_ITERS=60,40,10 H16_COPIES=asl-warp,pir-warp5 ...), for tuning.
// H16_MASKDIR=DIR takes each copy's brain mask from DIR/NAME/brain_mask.nii.gz (skull-strip's).
// H16_SUPMIN=MM: the smallest fluid sigma; H16_MARGIN=MM: the template region's margin; H16_WORST=N lists the N worst
// points.
TEST_CASE("deformable registration settings sweep", "[.][cortexmap-sweep]") {
  const std::string dir = testing::samples_dir();
  if (dir.empty()) return;
  auto env = [](const char* k, const char* def) {
    const char* v = std::getenv(k);
    return std::string(v ? v : def);
  };
  auto split = [](const std::string& s) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(std::stod(item));
    return out;
  };
  DeformableOptions o;
  o.levels_mm = split(env("H16_LEVELS", "4,2,1"));
  o.iterations.clear();
  for (double v : split(env("H16_ITERS", "60,40,10"))) o.iterations.push_back(int(v));
  o.ncc_radius_vox = std::stoi(env("H16_RADIUS", "2"));
  o.sigma_update_vox = std::stod(env("H16_SUP", "1.732"));
  o.min_sigma_update_mm = std::stod(env("H16_SUPMIN", "3.464"));
  o.sigma_field_vox = std::stod(env("H16_SFIELD", "0.707"));
  o.step_vox = std::stod(env("H16_STEP", "0.25"));
  o.crop_margin_mm = std::stod(env("H16_CROP", "4"));
  o.mask_weight = std::stod(env("H16_MASKW", "0"));
  o.mask_sigma_vox = std::stod(env("H16_MASKSIG", "1"));
  o.mask_margin_mm = std::stod(env("H16_MARGIN", "4"));
  // H16_TMASK=FILE: the template mask of the mask channel (e.g. skull-strip run on Colin27).
  Mask channel_template;
  if (!env("H16_TMASK", "").empty()) {
    channel_template = read_mask(env("H16_TMASK", ""), nullptr);
    o.mask_channel_template = &channel_template;
  }
  std::stringstream names(env("H16_COPIES", "asl-warp,pir-warp5"));
  std::string name;
  while (std::getline(names, name, ',')) {
    const std::string mask_dir = env("H16_MASKDIR", "");
    const KnownWarpFigures f =
        known_warp_figures(dir, name, o, mask_dir.empty() ? "" : mask_dir + "/" + name + "/brain_mask.nii.gz");
    WARN(name << (mask_dir.empty() ? " (exact mask)" : " (mask from file)") << ": " << describe(f));
    // H16_WORST=N: the N worst points (template RAS, error, distance to the copy grid's faces).
    auto worst = f.errors;
    std::sort(worst.begin(), worst.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
    const std::size_t nw = std::min<std::size_t>(worst.size(), std::size_t(std::stoi(env("H16_WORST", "0"))));
    for (std::size_t i = 0; i < nw; ++i) {
      const auto& [e, p, face] = worst[i];
      WARN(fmt::format("  {:.3f} mm at MNI ({:.0f}, {:.0f}, {:.0f}), {:.0f} voxels from the copy's grid face", e, p[0],
                       p[1], p[2], face));
    }
  }
}

TEST_CASE("deformable registration gives the same field with 1 and 2 threads", "[cortexmap]") {
  const std::string dir = testing::samples_dir();
  if (dir.empty()) {
    testing::skip("samples absent (run make-samples --out " TMSPLAN_SAMPLES_DIR ")");
  }
  ThreadsGuard guard;
  const Image subject = read_image(dir + "/small-2mm.nii.gz");
  const Image templ = read_image(testing::colin_head());
  const Mask templ_brain = read_mask(kColinBrain, &templ.grid);
  const Mask subject_brain =
      threshold(resample_affine(to_image(templ_brain), subject.grid, Eigen::Matrix4d::Identity(), Interp::Linear),
                0.5f);  // roughly placed: only determinism is tested here
  DeformableOptions options;
  options.levels_mm = {4.0, 2.0};
  options.iterations = {8, 4};
  options.affine.max_iterations_per_level = 5;
  // NCC alone, then with the mask channel (which must change the field: it acts).
  std::vector<DisplacementField> forward;
  for (const int variant : {0, 1}) {
    INFO("variant " << variant << " (0 NCC, 1 mask channel)");
    options.mask_weight = variant == 1 ? 1.0 : 0.0;
    set_threads(1);
    const DeformableResult one = register_deformable(subject, subject_brain, templ, templ_brain, options);
    set_threads(2);
    const DeformableResult two = register_deformable(subject, subject_brain, templ, templ_brain, options);
    for (int c = 0; c < 3; ++c) {
      const auto& a = one.map.to_mni_warp().d[std::size_t(c)];
      const auto& b = two.map.to_mni_warp().d[std::size_t(c)];
      REQUIRE(a.size() == b.size());
      CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
      const auto& wa = one.map.from_mni_warp().d[std::size_t(c)];
      const auto& wb = two.map.from_mni_warp().d[std::size_t(c)];
      CHECK(std::memcmp(wa.data(), wb.data(), wa.size() * sizeof(float)) == 0);
    }
    CHECK(one.map.to_mni_warp().max_norm_mm() > 0.0);
    CHECK(one.min_jacobian > 0.0);
    forward.push_back(one.map.to_mni_warp());
  }
  for (std::size_t v = 1; v < forward.size(); ++v) {
    double change = 0.0;
    for (std::size_t i = 0; i < forward[0].d[0].size(); ++i)
      change = std::max(change, (forward[v].at_voxel(i) - forward[0].at_voxel(i)).norm());
    CHECK(change > 0.05);
  }
  // Bad mask-channel settings are refused.
  options.mask_weight = -1.0;
  CHECK_THROWS_AS(register_deformable(subject, subject_brain, templ, templ_brain, options), Error);
  options.mask_weight = 1.0;
  const Mask off_grid(subject.grid, 1);
  options.mask_channel_template = &off_grid;
  CHECK_THROWS_AS(register_deformable(subject, subject_brain, templ, templ_brain, options), Error);
}

TEST_CASE("cortex-map refuses inputs on different grids, a template without a brain, and bad usage",
          "[cortexmap][unit]") {
  const std::string dir = testing::temp_dir("cortexmap-cli");
  const std::string tool = testing::bin("cortex-map");
  // A small synthetic head and masks; the brain mask on another grid.
  Grid g;
  g.dim = {40, 44, 40};
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() *= 4.0;
  g.vox2ras.m.topRightCorner<3, 1>() = Eigen::Vector3d(-80, -90, -70);
  Image t1(g, 0.0f);
  Mask head(g, 0), brain(g, 0);
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) {
        const double r = (g.ras(i, j, k).v - Eigen::Vector3d(0, -10, 10)).norm();
        head(i, j, k) = r < 70;
        brain(i, j, k) = r < 55;
        t1(i, j, k) = r < 55 ? 100.0f : r < 70 ? 60.0f : 0.0f;
      }
  WriteOptions wo;
  write_image(dir + "/t1.nii.gz", t1, wo);
  write_mask(dir + "/head.nii.gz", head, wo);
  Mask shifted = brain;
  shifted.grid.vox2ras.m(0, 3) += 2.0;
  write_mask(dir + "/brain_other_grid.nii.gz", shifted, wo);
  write_mask(dir + "/brain.nii.gz", brain, wo);
  std::filesystem::create_directories(dir + "/out");

  const std::string base = tool + " --t1 " + dir + "/t1.nii.gz --head " + dir + "/head.nii.gz -o " + dir + "/out";
  auto r = testing::run(base + " --brain " + dir + "/brain_other_grid.nii.gz");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("brain_other_grid.nii.gz") != std::string::npos);
  CHECK(r.err.find("grid") != std::string::npos);

  r = testing::run(base + " --brain " + dir + "/brain.nii.gz --template " + testing::colin_head());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--template-brain") != std::string::npos);

  // A "brain" that is not on the template's grid (the subject's own mask) is refused, named.
  r = testing::run(base + " --brain " + dir + "/brain.nii.gz --template " + testing::colin_head() +
                   " --template-brain " + dir + "/brain.nii.gz");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("brain.nii.gz") != std::string::npos);

  r = testing::run(tool + " --t1 " + dir + "/t1.nii.gz -o " + dir + "/out");
  CHECK(r.exit_code == 2);

  // --iterations takes one count per deformable level (three since the 1 mm level; it took two
  // and refused any call before this test).
  r = testing::run(base + " --brain " + dir + "/brain.nii.gz --iterations 60 40");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--iterations") != std::string::npos);

  // Outputs that exist are refused before any work (no --force); three iteration counts parse.
  std::ofstream(dir + "/out/cortex_map.json") << "{}";
  r = testing::run(base + " --brain " + dir + "/brain.nii.gz --iterations 6 4 1");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cortex_map.json") != std::string::npos);
  CHECK(testing::list_files(dir + "/out") == "cortex_map.json ");

  // map-point: one of --mni / --ras, a folder with transforms.
  r = testing::run(tool + " map-point --subject-dir " + dir + " --mni 1,2,3");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("to_mni_affine.txt") != std::string::npos);
  r = testing::run(tool + " map-point --subject-dir " + dir);
  CHECK(r.exit_code == 2);
}

TEST_CASE("map-point prints the mapped point as JSON", "[cortexmap][unit]") {
  const std::string dir = testing::temp_dir("cortexmap-mappoint");
  const Eigen::Matrix4d a = test_affine();
  const DisplacementField u = analytic_field(template_grid(), 3.0);
  const MniMap map(a, u, invert_to_subject_grid(a, u, subject_grid()));
  map.save(dir, false);
  const Eigen::Vector3d p(10, -20, 15);
  auto r = testing::run(testing::bin("cortex-map") + " map-point --subject-dir " + dir + " --mni 10,-20,15");
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out);
  const Eigen::Vector3d q(j.at("subject_ras")[0], j.at("subject_ras")[1], j.at("subject_ras")[2]);
  CHECK((q - map.to_subject(p)).norm() < 1e-3);
  r = testing::run(testing::bin("cortex-map") + " map-point --subject-dir " + dir + " --ras " +
                   fmt::format("{},{},{}", q[0], q[1], q[2]));
  REQUIRE(r.exit_code == 0);
  const auto k = nlohmann::json::parse(r.out);
  CHECK((Eigen::Vector3d(k.at("mni")[0], k.at("mni")[1], k.at("mni")[2]) - p).norm() < 0.01);
}
