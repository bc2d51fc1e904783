// Affine registration to the MNI template: analytic phantoms with exact answers, the scanner-like
// Colin27 copies with known transforms, a real head against its HD-BET mask, determinism and
// refusals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "support.hpp"
#include "tmsplan/deformable.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/nifti.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/registration.hpp"
#include "tmsplan/resample.hpp"
#include "tools_src/sample_transform.hpp"

using namespace tmsplan;

namespace {

const char* const kColinBrain = "/usr/share/mricron/templates/ch2bet.nii.gz";

Eigen::Matrix3d euler_deg(double x, double y, double z) {
  const double d2r = M_PI / 180.0;
  return (Eigen::AngleAxisd(z * d2r, Eigen::Vector3d::UnitZ()) * Eigen::AngleAxisd(y * d2r, Eigen::Vector3d::UnitY()) *
          Eigen::AngleAxisd(x * d2r, Eigen::Vector3d::UnitX()))
      .toRotationMatrix();
}

// Smooth inside-indicator of an ellipsoid (1 inside, 0 outside, ~2 mm soft edge).
double ellipsoid(const Eigen::Vector3d& p, const Eigen::Vector3d& centre, const Eigen::Vector3d& radii) {
  const double r = ((p - centre).cwiseQuotient(radii)).norm();
  const double d_mm = (1.0 - r) * radii.minCoeff();
  return 1.0 / (1.0 + std::exp(-d_mm / 1.5));
}

// An asymmetric head-like phantom defined in world mm: scalp, brain, an off-centre ventricle and a
// blob, so that every affine parameter is observable.
double phantom_value(const Eigen::Vector3d& p) {
  return 0.5 * ellipsoid(p, {0, -15, 10}, {75, 95, 85}) + 0.5 * ellipsoid(p, {0, -15, 15}, {64, 84, 70}) -
         0.6 * ellipsoid(p, {6, -10, 15}, {10, 25, 12}) + 0.4 * ellipsoid(p, {30, 20, 40}, {15, 15, 15}) +
         0.3 * ellipsoid(p, {-25, -50, -10}, {12, 20, 10});
}

// The phantom sampled on `grid` after the map `to_phantom` (world of the grid -> phantom world).
Image phantom_image(const Grid& grid, const Eigen::Matrix4d& to_phantom) {
  Image im(grid, 0.0f);
  for (std::int64_t k = 0; k < grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < grid.dim[0]; ++i)
        im(i, j, k) = static_cast<float>(1000.0 * phantom_value(apply_affine(to_phantom, grid.ras(i, j, k).v)));
  return im;
}

Grid template_grid() {
  Grid g;
  g.dim = {100, 120, 105};
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() *= 2.0;
  g.vox2ras.m.topRightCorner<3, 1>() = Eigen::Vector3d(-99, -135, -90);
  return g;
}

// A scanner-like subject grid: LPS-ish axes tilted by a few degrees, 1.7 x 1.7 x 2.2 mm voxels.
Grid subject_grid() {
  Grid g;
  g.dim = {120, 130, 95};
  Eigen::Matrix3d dir = euler_deg(4, -3, 6) * Eigen::Vector3d(-1, -1, 1).asDiagonal();
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() = dir * Eigen::Vector3d(1.7, 1.7, 2.2).asDiagonal();
  g.vox2ras.m.topRightCorner<3, 1>() = Eigen::Vector3d(100, 110, -95);
  return g;
}

// Points spread through the phantom's brain ellipsoid.
std::vector<Eigen::Vector3d> phantom_brain_points() {
  std::vector<Eigen::Vector3d> pts;
  for (double x = -50; x <= 50; x += 20)
    for (double y = -80; y <= 50; y += 20)
      for (double z = -30; z <= 60; z += 20)
        if (ellipsoid({x, y, z}, {0, -15, 15}, {64, 84, 70}) > 0.9) pts.emplace_back(x, y, z);
  return pts;
}

double mean_error_mm(const Eigen::Matrix4d& got, const Eigen::Matrix4d& want, const std::vector<Eigen::Vector3d>& pts) {
  double sum = 0;
  for (const auto& p : pts) sum += (apply_affine(got, p) - apply_affine(want, p)).norm();
  return sum / double(pts.size());
}

// ~100 points inside Colin27's brain (ch2bet > 0), spread evenly in storage order.
std::vector<Eigen::Vector3d> colin_brain_points() {
  const Image bet = read_image(kColinBrain);
  std::size_t inside = 0;
  for (float v : bet.data) inside += v > 0;
  const std::size_t step = inside / 100;
  std::vector<Eigen::Vector3d> pts;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < bet.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < bet.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < bet.grid.dim[0]; ++i)
        if (bet(i, j, k) > 0 && (n++ % step) == step / 2) pts.push_back(bet.grid.ras(i, j, k).v);
  return pts;
}

nlohmann::json sample_copy(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/copies.json");
  const auto index = nlohmann::json::parse(in);
  for (const auto& c : index.at("copies"))
    if (c.at("name") == name) return c;
  FAIL("copy " << name << " not in " << dir << "/copies.json");
  return {};
}

// Registers a scanner-like copy to Colin27; mean and max error (mm) over brain points against the
// copy's known transform.
std::pair<double, double> copy_error_mm(const std::string& dir, const std::string& name, const AffineOptions& options) {
  const auto known = samples::KnownTransform::from_json(sample_copy(dir, name));
  static const Image templ = read_image(testing::colin_head());
  static const std::vector<Eigen::Vector3d> pts = colin_brain_points();
  const AffineResult r = register_affine(read_image(dir + "/" + name + ".nii.gz"), templ, options);
  double sum = 0, worst = 0;
  for (const auto& p : pts) {
    const double e = (apply_affine(r.template_to_subject, p) - known.forward(p)).norm();
    sum += e;
    worst = std::max(worst, e);
  }
  return {sum / double(pts.size()), worst};
}

struct ThreadsGuard {
  ~ThreadsGuard() { set_threads(0); }
};

}  // namespace

TEST_CASE("a shifted copy of a phantom registers to the exact shift", "[registration][unit]") {
  const Image templ = phantom_image(template_grid(), Eigen::Matrix4d::Identity());
  Image subject = templ;
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  shift.topRightCorner<3, 1>() = Eigen::Vector3d(4, -6, 10);  // whole voxels: same samples, moved header
  subject.grid.vox2ras.m = shift * templ.grid.vox2ras.m;
  const AffineResult r = register_affine(subject, templ);
  CHECK((r.template_to_subject - shift).cwiseAbs().maxCoeff() < 1e-3);
  CHECK((r.subject_to_template * r.template_to_subject - Eigen::Matrix4d::Identity()).cwiseAbs().maxCoeff() < 1e-9);
  CHECK(r.similarity_after > 0.999);
  CHECK(r.similarity_before < r.similarity_after);
}

TEST_CASE("a phantom under a known affine, on an oblique anisotropic grid, is recovered", "[registration][unit]") {
  Eigen::Matrix4d truth = Eigen::Matrix4d::Identity();  // template point -> subject point
  truth.topLeftCorner<3, 3>() = euler_deg(14, -6, 9) * Eigen::Vector3d(1.06, 0.94, 1.02).asDiagonal();
  truth.topRightCorner<3, 1>() = Eigen::Vector3d(6, -9, 4);
  const Image templ = phantom_image(template_grid(), Eigen::Matrix4d::Identity());
  const Image subject = phantom_image(subject_grid(), truth.inverse());
  const auto pts = phantom_brain_points();
  REQUIRE(pts.size() > 30);

  const AffineResult r = register_affine(subject, templ);
  const double err = mean_error_mm(r.template_to_subject, truth, pts);
  INFO("mean error " << err << " mm, ncc " << r.similarity_before << " -> " << r.similarity_after);
  CHECK(err < 0.1);
  CHECK(r.similarity_after > 0.99);

  SECTION("a run without shear fits the rotation and the scale along each template axis") {
    // The truth is in that family (rotation times a diagonal scale), so it is recovered as well;
    // the matrix is a rotation times a diagonal: A^T A is diagonal (register_deformable's start).
    AffineOptions scaled;
    scaled.shear = false;
    const AffineResult rs = register_affine(subject, templ, scaled);
    const Eigen::Matrix3d a = rs.template_to_subject.topLeftCorner<3, 3>();
    const Eigen::Matrix3d ata = a.transpose() * a;
    CHECK((ata - Eigen::Matrix3d(ata.diagonal().asDiagonal())).cwiseAbs().maxCoeff() < 1e-9);
    CHECK(std::abs(std::sqrt(ata(0, 0)) - 1.06) < 0.01);
    CHECK(std::abs(std::sqrt(ata(1, 1)) - 0.94) < 0.01);
    CHECK(mean_error_mm(rs.template_to_subject, truth, pts) < 0.1);
  }
  SECTION("a rigid-only run cannot fit the scale and says so by a larger error") {
    AffineOptions rigid;
    rigid.rigid_only = true;
    const AffineResult rr = register_affine(subject, templ, rigid);
    const Eigen::Matrix3d a = rr.template_to_subject.topLeftCorner<3, 3>();
    CHECK((a.transpose() * a - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() < 1e-9);
    CHECK(mean_error_mm(rr.template_to_subject, truth, pts) > err);
  }
}

TEST_CASE("the same subject stored in another voxel order gives the same RAS answer", "[registration][unit]") {
  const Image templ = phantom_image(template_grid(), Eigen::Matrix4d::Identity());
  Eigen::Matrix4d truth = Eigen::Matrix4d::Identity();
  truth.topLeftCorner<3, 3>() = euler_deg(-18, 4, -7);
  truth.topRightCorner<3, 1>() = Eigen::Vector3d(-3, 12, -8);
  const Image subject = phantom_image(subject_grid(), truth.inverse());
  // Axes permuted (k, i, j) with the first reversed: same world position for every voxel.
  Image permuted;
  const auto& d = subject.grid.dim;
  permuted.grid.dim = {d[2], d[0], d[1]};
  Eigen::Matrix4d new2old = Eigen::Matrix4d::Zero();
  new2old(2, 0) = -1, new2old(2, 3) = double(d[2] - 1), new2old(0, 1) = 1, new2old(1, 2) = 1, new2old(3, 3) = 1;
  permuted.grid.vox2ras.m = subject.grid.vox2ras.m * new2old;
  permuted.data.resize(subject.data.size());
  for (std::int64_t k = 0; k < permuted.grid.dim[2]; ++k)
    for (std::int64_t j = 0; j < permuted.grid.dim[1]; ++j)
      for (std::int64_t i = 0; i < permuted.grid.dim[0]; ++i) permuted(i, j, k) = subject(j, k, d[2] - 1 - i);

  const auto pts = phantom_brain_points();
  const AffineResult a = register_affine(subject, templ);
  const AffineResult b = register_affine(permuted, templ);
  CHECK(mean_error_mm(a.template_to_subject, truth, pts) < 0.3);
  CHECK(mean_error_mm(b.template_to_subject, truth, pts) < 0.3);
  CHECK(mean_error_mm(a.template_to_subject, b.template_to_subject, pts) < 0.1);
}

TEST_CASE("scanner-like Colin27 copies register to their known transforms", "[registration][data]") {
  const std::string dir = testing::samples_dir();
  if (dir.empty()) {
    testing::skip("samples absent (run make-samples --out " TMSPLAN_SAMPLES_DIR ")");
  }
  const Mask brain = threshold(read_image(kColinBrain), 0.0f);
  AffineOptions focused;
  focused.template_focus = &brain;
  // Rigid copies: the affine fit lands within a millimetre everywhere in the brain; focusing the
  // finest level on Colin27's brain makes it several times better.
  {
    const auto [mean_mm, max_mm] = copy_error_mm(dir, "lps-rot", AffineOptions{});
    INFO("lps-rot, whole head: mean " << mean_mm << " mm, max " << max_mm << " mm");
    CHECK(mean_mm < 0.6);
    CHECK(max_mm < 1.2);
  }
  {
    const auto [mean_mm, max_mm] = copy_error_mm(dir, "oblique-bias", focused);
    INFO("oblique-bias, brain focus: mean " << mean_mm << " mm, max " << max_mm << " mm");
    CHECK(mean_mm < 0.3);
    CHECK(max_mm < 0.6);
  }
  // A smooth 3 mm warp on top: the affine part still brings the brain within ~2 mm.
  const auto [mean_mm, max_mm] = copy_error_mm(dir, "asl-warp", focused);
  INFO("asl-warp, brain focus: mean " << mean_mm << " mm, max " << max_mm << " mm");
  CHECK(mean_mm < 2.0);
}

TEST_CASE("registration is deterministic: 1 and 2 threads give identical matrices", "[registration][data]") {
  const std::string dir = testing::samples_dir();
  if (dir.empty()) {
    testing::skip("samples absent (run make-samples --out " TMSPLAN_SAMPLES_DIR ")");
  }
  ThreadsGuard guard;
  const Image subject = read_image(dir + "/pir-aniso.nii.gz");
  const Image templ = read_image(testing::colin_head());
  set_threads(1);
  const AffineResult one = register_affine(subject, templ);
  set_threads(2);
  const AffineResult two = register_affine(subject, templ);
  CHECK(std::memcmp(one.template_to_subject.data(), two.template_to_subject.data(), sizeof(double) * 16) == 0);
  CHECK(one.similarity_after == two.similarity_after);
  CHECK(one.iterations == two.iterations);
}

TEST_CASE("a real T1 head: Colin27's brain mapped by the affine overlaps HD-BET's mask", "[registration][data]") {
  const std::string data = testing::shared_data();
  if (data.empty()) {
    testing::skip("../shared/data is absent (set TMSPLAN_SHARED_DATA)");
  }
  const Image subject = read_image(data + "/philips-mprage/T1w.nii.gz");
  const Mask reference = read_mask(data + "/philips-mprage/reference/brainmask_hdbet.nii.gz", &subject.grid);
  const Mask brain = threshold(read_image(kColinBrain), 0.0f);
  AffineOptions options;
  options.template_focus = &brain;
  const AffineResult r = register_affine(subject, read_image(testing::colin_head()), options);
  const Image warped = resample_affine(to_image(brain), subject.grid, r.subject_to_template, Interp::Linear);
  double a = 0, b = 0, both = 0;
  for (std::size_t n = 0; n < warped.data.size(); ++n) {
    const bool x = warped.data[n] >= 0.5f, y = reference.data[n] != 0;
    a += x, b += y, both += x && y;
  }
  const double dice = 2.0 * both / (a + b);
  INFO("Dice " << dice << ", ncc " << r.similarity_before << " -> " << r.similarity_after);
  CHECK(dice > 0.90);
  CHECK(r.similarity_after > 0.5);
}

TEST_CASE("images without a head are refused with a clear Error", "[registration][unit]") {
  const Image templ = phantom_image(template_grid(), Eigen::Matrix4d::Identity());
  Image empty(subject_grid(), 0.0f);
  CHECK_THROWS_WITH(register_affine(empty, templ), Catch::Contains("subject image has no head signal"));
  Image speck = empty;
  speck(60, 60, 40) = 500.0f;
  CHECK_THROWS_WITH(register_affine(speck, templ), Catch::Contains("subject image has no head signal"));
  CHECK_THROWS_WITH(register_affine(templ, empty), Catch::Contains("template image has no head signal"));
  Image noise = empty;
  std::mt19937 rng(3);
  for (auto& v : noise.data) v = float(rng() % 1000u);
  CHECK_THROWS_WITH(register_affine(noise, templ), Catch::Contains("no head signal"));
  Image tiny;
  tiny.grid.dim = {2, 50, 50};
  tiny.data.assign(tiny.grid.voxels(), 1.0f);
  CHECK_THROWS_AS(register_affine(tiny, templ), Error);
  AffineOptions bad;
  bad.levels_mm.clear();
  CHECK_THROWS_AS(register_affine(templ, templ, bad), Error);
  const Mask wrong_grid(subject_grid(), 1);
  AffineOptions focus;
  focus.template_focus = &wrong_grid;
  CHECK_THROWS_WITH(register_affine(templ, templ, focus), Catch::Contains("focus mask does not lie on"));
}

// Issue 18: the one trilinear sampler, the one separable Gaussian and the one NIfTI reader that
// the registration uses.
TEST_CASE("the trilinear sampler is exact on a linear function, with its gradient and edge rules",
          "[registration][unit]") {
  Image im;
  im.grid.dim = {7, 5, 4};
  im.data.resize(im.grid.voxels());
  auto f = [](double x, double y, double z) { return 1.0 + 2.0 * x + 3.0 * y - 1.5 * z; };
  for (std::int64_t k = 0; k < 4; ++k)
    for (std::int64_t j = 0; j < 5; ++j)
      for (std::int64_t i = 0; i < 7; ++i) im(i, j, k) = float(f(double(i), double(j), double(k)));
  const Trilinear t = trilinear_stencil(im.grid.dim, 2.25, 3.5, 1.75, Edge::Zero);
  REQUIRE(t.inside);
  double g[3];
  CHECK(trilinear_value(im.data.data(), t, g) == Approx(f(2.25, 3.5, 1.75)).margin(1e-5));
  CHECK(g[0] == Approx(2.0).margin(1e-5));
  CHECK(g[1] == Approx(3.0).margin(1e-5));
  CHECK(g[2] == Approx(-1.5).margin(1e-5));
  CHECK(sample(im, Eigen::Vector3d(2.25, 3.5, 1.75), Interp::Linear) == Approx(f(2.25, 3.5, 1.75)).margin(1e-5));
  // Within half a voxel of the border: the edge value; beyond it: nothing (Zero) or the edge (Clamp).
  const Trilinear near = trilinear_stencil(im.grid.dim, -0.4, 0.0, 0.0, Edge::Zero);
  REQUIRE(near.inside);
  CHECK(trilinear_value(im.data.data(), near) == Approx(f(0, 0, 0)));
  CHECK_FALSE(trilinear_stencil(im.grid.dim, -0.6, 0.0, 0.0, Edge::Zero).inside);
  CHECK_FALSE(trilinear_stencil(im.grid.dim, 1.0, 1.0, 3.6, Edge::Zero).inside);
  const Trilinear far = trilinear_stencil(im.grid.dim, 9.0, 1.0, 1.0, Edge::Clamp);
  REQUIRE(far.inside);
  CHECK(trilinear_value(im.data.data(), far) == Approx(f(6, 1, 1)));
  CHECK(sample(im, Eigen::Vector3d(-0.6, 0.0, 0.0), Interp::Linear, -7.0f) == -7.0f);
}

TEST_CASE("the separable Gaussian: one kernel, either precision, thread-independent", "[registration][unit]") {
  Image im;
  im.grid.dim = {23, 19, 17};
  im.grid.vox2ras = RasMatrix(Eigen::Vector4d(1.0, 1.5, 2.0, 1.0).asDiagonal());
  std::mt19937 rng(5);
  im.data.resize(im.grid.voxels());
  for (auto& v : im.data) v = float(rng() % 1000u) / 10.0f;
  ThreadsGuard guard;
  set_threads(1);
  const Image one = gaussian_smooth(im, 2.0);
  set_threads(2);
  const Image two = gaussian_smooth(im, 2.0);
  REQUIRE(one.data.size() == two.data.size());
  CHECK(std::memcmp(one.data.data(), two.data.data(), one.data.size() * sizeof(float)) == 0);
  Image single = im;
  gaussian_smooth_voxels(single, Eigen::Vector3d(2.0, 2.0 / 1.5, 1.0), Precision::Single);
  double worst = 0, mean_in = 0, mean_out = 0;
  for (std::size_t i = 0; i < im.data.size(); ++i) {
    worst = std::max(worst, double(std::abs(single.data[i] - one.data[i])));
    mean_in += im.data[i], mean_out += one.data[i];
  }
  CHECK(worst < 1e-3);
  // It smooths (the spread drops) and a constant stays constant.
  double var_in = 0, var_out = 0;
  mean_in /= double(im.data.size()), mean_out /= double(im.data.size());
  for (std::size_t i = 0; i < im.data.size(); ++i) {
    var_in += (im.data[i] - mean_in) * (im.data[i] - mean_in);
    var_out += (one.data[i] - mean_out) * (one.data[i] - mean_out);
  }
  CHECK(var_out < 0.2 * var_in);
  Image flat(im.grid, 3.0f);
  const Image flat_out = gaussian_smooth(flat, 3.0);
  for (float v : flat_out.data) REQUIRE(v == Approx(3.0f).epsilon(1e-6));
}

namespace {
template <class T> void put_swapped(std::string& bytes, std::size_t at, T v) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  for (std::size_t i = 0; i < sizeof(T); ++i) bytes[at + i] = char(b[sizeof(T) - 1 - i]);
}
}  // namespace

TEST_CASE("5D vector NIfTI: written, read back, read big-endian, vox_offset checked", "[registration][unit]") {
  const std::string dir = testing::temp_dir("nifti-vectors");
  VectorVolume v;
  v.grid.dim = {4, 3, 2};
  v.grid.vox2ras = RasMatrix(Eigen::Vector4d(2.0, 2.0, 2.0, 1.0).asDiagonal());
  v.components = 3;
  v.intent_code = 1007;
  for (std::size_t i = 0; i < 3 * v.grid.voxels(); ++i) v.data.push_back(float(i) * 0.25f - 3.0f);
  write_nifti_vectors(dir + "/v.nii.gz", v, Frame::Mni, "test", true);
  const VectorVolume back = read_nifti_vectors(dir + "/v.nii.gz");
  CHECK(back.components == 3);
  CHECK(back.intent_code == 1007);
  CHECK(back.grid.same_as(v.grid));
  CHECK(back.data == v.data);
  // The same file in big-endian byte order (header fields and values swapped) reads the same.
  write_nifti_vectors(dir + "/v.nii", v, Frame::Mni, "test", true);
  std::string bytes;
  {
    std::ifstream in(dir + "/v.nii", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(bytes.size() == 352 + 4 * v.data.size());
  std::string big = bytes;
  auto swap_field = [&](std::size_t at, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) big[at + i] = bytes[at + size - 1 - i];
  };
  swap_field(0, 4);                                                 // sizeof_hdr
  for (std::size_t d = 0; d < 8; ++d) swap_field(40 + 2 * d, 2);    // dim
  swap_field(68, 2), swap_field(70, 2), swap_field(72, 2);          // intent_code, datatype, bitpix
  for (std::size_t d = 0; d < 8; ++d) swap_field(76 + 4 * d, 4);    // pixdim
  swap_field(108, 4), swap_field(112, 4), swap_field(116, 4);       // vox_offset, scl_slope, scl_inter
  swap_field(252, 2), swap_field(254, 2);                           // qform_code, sform_code
  for (std::size_t q = 0; q < 6; ++q) swap_field(256 + 4 * q, 4);   // quatern, qoffset
  for (std::size_t q = 0; q < 12; ++q) swap_field(280 + 4 * q, 4);  // srow
  for (std::size_t i = 0; i < v.data.size(); ++i) put_swapped(big, 352 + 4 * i, v.data[i]);
  {
    std::ofstream out(dir + "/big.nii", std::ios::binary);
    out.write(big.data(), std::streamsize(big.size()));
  }
  const VectorVolume swapped = read_nifti_vectors(dir + "/big.nii");
  CHECK(swapped.data == v.data);
  CHECK(swapped.grid.same_as(v.grid));
  // vox_offset below 352 is refused, as for 3D images.
  std::string bad = bytes;
  const float offset = 348.0f;
  std::memcpy(bad.data() + 108, &offset, 4);
  {
    std::ofstream out(dir + "/bad.nii", std::ios::binary);
    out.write(bad.data(), std::streamsize(bad.size()));
  }
  CHECK_THROWS_WITH(read_nifti_vectors(dir + "/bad.nii"), Catch::Contains("vox_offset"));
  CHECK_THROWS_WITH(read_nifti_vectors(dir + "/nothing.nii"), Catch::Contains("does not exist"));
}
