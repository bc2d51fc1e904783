// protocol-export: targets.json validation, dose arithmetic, the export through the real binary
// (every navigator file read back by our readers equals the pose in targets.json), safety under
// --strict, the self-contained report, T1 identity, no overwriting, no partial outputs.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include "name_reader.hpp"
#include "support.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/navigators.hpp"
#include "tmsplan/plan.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/report.hpp"

using namespace tmsplan;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr double kTol = 1e-4;

// A head mask by threshold (test fixture; the pipeline's comes from skull-strip).
Mask threshold_head(const Image& t1) {
  const double thr = 0.5 * otsu_threshold(t1);
  Mask m(t1.grid, 0);
  for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = t1.data[i] > thr ? 1 : 0;
  return fill_holes(largest_component(m));
}

bool inside(const Mask& m, const Eigen::Vector3d& p) {
  const VoxelIndex v = ras_to_voxel(m.grid.vox2ras, RasPoint(p));
  const auto i = std::lround(v.v[0]), j = std::lround(v.v[1]), k = std::lround(v.v[2]);
  return m.grid.inside(i, j, k) && m(i, j, k) != 0;
}

// Distance from p along n to the scalp: the first point after which the next 10 mm are all
// outside the head (so thin dark gaps inside do not count).
double scalp_distance(const Mask& head, const Eigen::Vector3d& p, const Eigen::Vector3d& n) {
  for (double t = 0; t < 200; t += 0.25) {
    bool outside = true;
    for (double s = 0.25; s <= 10.0 && outside; s += 0.5) outside = !inside(head, p + (t + s) * n);
    if (outside) return t;
  }
  return 200;
}

// The direction from p to its nearest scalp point, searched within 40 deg of `guess`.
Eigen::Vector3d nearest_scalp_direction(const Mask& head, const Eigen::Vector3d& p, const Eigen::Vector3d& guess) {
  const Eigen::Vector3d g = guess.normalized();
  const Eigen::Vector3d a = g.unitOrthogonal(), b = g.cross(a);
  Eigen::Vector3d best = g;
  double best_t = scalp_distance(head, p, g);
  for (double tilt = 5; tilt <= 40; tilt += 5)
    for (double az = 0; az < 360; az += 15) {
      const double tr = tilt * M_PI / 180, ar = az * M_PI / 180;
      const Eigen::Vector3d d = (std::cos(tr) * g + std::sin(tr) * (std::cos(ar) * a + std::sin(ar) * b)).normalized();
      const double t = scalp_distance(head, p, d);
      if (t < best_t) {
        best_t = t;
        best = d;
      }
    }
  return best;
}

// One target as target-pick would write it: scalp entry along `out_dir` from the cortical point;
// SimNIBS pose (z = -normal, y = handle orthogonalised, x = y x z), centre 4 mm out for hair.
json make_target(const std::string& name, const Eigen::Vector3d& cortical, const Eigen::Vector3d& out_dir,
                 const Eigen::Vector3d& handle_hint, const Mask& head, std::optional<Eigen::Vector3d> mni = {}) {
  const Eigen::Vector3d n = out_dir.normalized();
  const Eigen::Vector3d scalp = cortical + scalp_distance(head, cortical, n) * n;
  const Eigen::Vector3d z = -n;
  const Eigen::Vector3d y = (handle_hint - handle_hint.dot(z) * z).normalized();
  const Eigen::Vector3d x = y.cross(z);
  const Eigen::Vector3d centre = scalp + 4.0 * n;
  json pose = json::array();
  for (int r = 0; r < 3; ++r) pose.push_back({x[r], y[r], z[r], centre[r]});
  pose.push_back({0, 0, 0, 1});
  auto v = [](const Eigen::Vector3d& a) { return json::array({a[0], a[1], a[2]}); };
  json t = {{"name", name},
            {"description", "hand-made test target " + name},
            {"source", "test"},
            {"cortical_ras", v(cortical)},
            {"scalp_ras", v(scalp)},
            {"scalp_normal_ras", v(n)},
            {"coil_centre_ras", v(centre)},
            {"coil_pose_ras", pose},
            {"handle_direction_ras", v(y)},
            {"handle_rule", "test"},
            {"scalp_to_cortex_mm", (scalp - cortical).norm()},
            {"atlas", {{"brodmann", {{"label", 4}, {"name", "BA4"}}}}},
            {"warnings", json::array()}};
  if (mni) t["mni"] = v(*mni);
  return t;
}

json targets_doc(const std::string& t1_path, const Image& t1, const json& targets) {
  json vox2ras = json::array();
  for (int r = 0; r < 4; ++r)
    vox2ras.push_back(
        {t1.grid.vox2ras.m(r, 0), t1.grid.vox2ras.m(r, 1), t1.grid.vox2ras.m(r, 2), t1.grid.vox2ras.m(r, 3)});
  return {{"schema", "tmsplan-targets/1"},
          {"tool", "target-pick"},
          {"version", "test"},
          {"command_line", {"target-pick", "(hand-made in tests/test_plan.cpp)"}},
          {"reference_t1",
           {{"path", t1_path}, {"sha256", sha256_file(t1_path)}, {"dim", t1.grid.dim}, {"vox2ras", vox2ras}}},
          {"space", "subject RAS+ (NIfTI world frame of reference_t1)"},
          {"units", "mm"},
          {"coil_convention", "simnibs: z into the head, y along the handle axis, x = y cross z"},
          {"hair_offset_mm", 4.0},
          {"targets", targets}};
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

Eigen::Matrix4d pose_of(const json& t) {
  Eigen::Matrix4d m;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) m(r, c) = t["coil_pose_ras"][std::size_t(r)][std::size_t(c)].get<double>();
  return m;
}

Eigen::Vector3d vec_of(const json& v) { return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>()}; }

// The Colin27 subject (mricron-data): T1, head mask, targets.json with M1 and DLPFC.
struct Colin {
  std::string dir, t1, targets;
  json doc;
  ~Colin() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

const Colin* colin() {
  static bool made = false;
  static Colin c;
  if (made) return c.t1.empty() ? nullptr : &c;
  made = true;
  if (!fs::exists(testing::colin_head())) return nullptr;
  c.dir = testing::temp_dir("plan_colin_" + std::to_string(::getpid()));  // ctest may run cases in parallel
  c.t1 = testing::colin_head();
  const Image t1 = read_image(c.t1);
  const Mask head = threshold_head(t1);
  WriteOptions wo;
  wo.force = true;
  write_mask(c.dir + "/head_mask.nii.gz", head, wo);
  const Eigen::Vector3d centre(0, -18, 18);
  json targets = json::array();
  const Eigen::Vector3d m1(-37, -21, 58), dlpfc(-36, 39, 43);  // DLPFC BA9 (Fox 2012)
  targets.push_back(make_target("M1_hand_left", m1, nearest_scalp_direction(head, m1, m1 - centre),
                                Eigen::Vector3d(-1, -1, 0), head, m1));
  targets.push_back(make_target("DLPFC_BA46", dlpfc, nearest_scalp_direction(head, dlpfc, dlpfc - centre),
                                Eigen::Vector3d(0, -1, 0), head, dlpfc));
  c.doc = targets_doc(c.t1, t1, targets);
  c.targets = c.dir + "/targets.json";
  write_text(c.targets, c.doc.dump(2));
  // An earlier step's QC picture and record, to be embedded in the report.
  std::vector<std::uint8_t> rgb(64 * 32 * 3, 0);
  for (std::size_t i = 0; i < rgb.size(); i += 3) rgb[i] = 200;
  write_text(c.dir + "/skull_strip_qc.png", encode_png(rgb, 64, 32));
  write_text(c.dir + "/skull_strip.json", json{{"tool", "skull-strip"},
                                               {"version", "test"},
                                               {"command_line", {"skull-strip", c.t1}},
                                               {"inputs", {{"t1", {{"path", c.t1}, {"sha256", sha256_file(c.t1)}}}}},
                                               {"time", {{"finished_utc", "2024-01-01T00:00:00Z"}}}}
                                              .dump(2));
  return &c;
}

#define COLIN_OR_SKIP(var)                                                                                             \
  const Colin* var = colin();                                                                                          \
  if (!var) testing::skip(testing::colin_head() + " not found (install mricron-data)");

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string export_cmd(const std::string& targets, const std::string& t1, const std::string& out,
                       const std::string& extra) {
  return testing::bin("protocol-export") + " --targets " + targets + " --t1 " + t1 + " -o " + out + " " + extra;
}

void check_pose(const Eigen::Matrix4d& got, const Eigen::Matrix4d& want, const std::string& what) {
  INFO(what << "\ngot\n" << got << "\nwant\n" << want);
  CHECK((got - want).cwiseAbs().maxCoeff() < kTol);
}

std::string user_protocol(double hz, double pct, double train_s, int trains, double iti) {
  const int ppt = int(std::lround(hz * train_s));
  return json{{"schema_version", 1},
              {"id", "user"},
              {"name", "user protocol"},
              {"target", "M1_hand_left"},
              {"frequency_hz", hz},
              {"intensity_pct_rmt", pct},
              {"train_duration_s", train_s},
              {"inter_train_interval_s", iti},
              {"trains", trains},
              {"pulses_per_session", trains * ppt},
              {"sessions", 1}}
      .dump(2);
}

}  // namespace

// ---- Library-level ------------------------------------------------------------------------------

TEST_CASE("plan: targets.json validation orthonormalises small shear and refuses bad poses", "[plan][unit]") {
  const std::string good = R"json({"schema": "tmsplan-targets/1", "tool": "t", "version": "1",
    "reference_t1": {"path": "t1.nii", "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
                     "dim": [10, 10, 10], "vox2ras": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]},
    "space": "subject RAS+ (NIfTI world frame of reference_t1)", "units": "mm", "coil_convention": "simnibs",
    "targets": [{"name": "M1_hand_left", "description": "d", "source": "s",
      "cortical_ras": [0, 0, 50], "scalp_ras": [0, 0, 70], "scalp_normal_ras": [0, 0, 1],
      "coil_centre_ras": [0, 0, 74],
      "coil_pose_ras": [[1, 0.002, 0, 0], [0, -1, 0, 0], [0, 0, -1, 74], [0, 0, 0, 1]],
      "handle_direction_ras": [0, -1, 0], "scalp_to_cortex_mm": 20, "warnings": []}]})json";
  const plan::Targets t = plan::parse_targets(good, "t.json");
  REQUIRE(t.targets.size() == 1);
  const Eigen::Matrix3d r = t.targets[0].coil_pose.m.topLeftCorner<3, 3>();
  CHECK((r.transpose() * r - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(r.determinant() == Approx(1.0));
  CHECK(t.notes.size() == 1);  // the shear was noted
  CHECK(plan::is_motor_target(t.targets[0]));

  const auto refused = [&](const std::string& from, const std::string& to, const std::string& field) {
    std::string bad = good;
    const auto pos = bad.find(from);
    REQUIRE(pos != std::string::npos);
    bad.replace(pos, from.size(), to);
    try {
      plan::parse_targets(bad, "t.json");
      FAIL("accepted: " << to);
    } catch (const Error& e) {
      CHECK(e.file() == "t.json");
      CHECK_THAT(std::string(e.what()), Catch::Contains(field));
    }
  };
  refused("[[1, 0.002, 0, 0], [0, -1, 0, 0]", "[[-1, 0, 0, 0], [0, -1, 0, 0]", "coil_pose_ras: mirrored");
  refused("[[1, 0.002, 0, 0], [0, -1, 0, 0]", "[[1, 0.3, 0, 0], [0, -1, 0, 0]", "not orthonormal");
  refused("[[1, 0.002, 0, 0], [0, -1, 0, 0]", "[[0, 0, 0, 0], [0, -1, 0, 0]", "degenerate");
  refused("\"scalp_normal_ras\": [0, 0, 1]", "\"scalp_normal_ras\": [0, 0, 2]", "unit vector");
  refused("\"coil_centre_ras\": [0, 0, 74]", "\"coil_centre_ras\": [0, 0, 75]", "coil_centre_ras");
  refused("\"handle_direction_ras\": [0, -1, 0]", "\"handle_direction_ras\": [1, 0, 0]", "handle_direction_ras");
  refused("\"scalp_to_cortex_mm\": 20", "\"scalp_to_cortex_mm\": null", "targets[0].scalp_to_cortex_mm");
  refused("\"scalp_to_cortex_mm\": 20", "\"scalp_to_cortex_mm\": 1e999", "not valid JSON");
  refused("\"dim\": [10, 10, 10]", "\"dim\": [10, 10]", "reference_t1.dim");
  refused("\"units\": \"mm\"", "\"units\": \"cm\"", "units");
  refused("\"targets\": [{", "\"targets\": [], \"x\": [{", "targets");
}

TEST_CASE("plan: dose arithmetic follows Stokes (3 %MSO/mm) and says when no M1 exists", "[plan][unit]") {
  plan::Targets all;
  plan::Target m1, dl;
  m1.name = "M1_hand_left";
  m1.scalp_to_cortex_mm = 14.0;
  dl.name = "DLPFC_BA46";
  dl.scalp_to_cortex_mm = 17.5;
  all.targets = {m1, dl};
  protocol::Protocol p = protocol::find_preset(protocol::load_presets(), "passard2007");
  std::vector<std::string> warnings;
  const std::vector<const plan::Target*> sel = {&all.targets[0], &all.targets[1]};
  auto doses = plan::compute_doses(all, sel, p, 45.0, "", warnings);
  REQUIRE(doses.size() == 2);
  CHECK(*doses[0].mt_target_pct_mso == Approx(45.0));
  CHECK(*doses[1].mt_target_pct_mso == Approx(45.0 + 3.0 * (17.5 - 14.0)));
  CHECK(*doses[1].intensity_pct_mso == Approx(0.8 * 55.5));
  CHECK_THAT(doses[1].arithmetic, Catch::Contains("45 + 3 x (17.50 - 14.00)") && Catch::Contains("55.5 %MSO"));

  const auto without_rmt = plan::compute_doses(all, sel, p, std::nullopt, "", warnings);
  CHECK(!without_rmt[1].mt_target_pct_mso);
  CHECK_THAT(without_rmt[1].arithmetic, Catch::Contains("RMT + 10.5 %MSO"));

  plan::Targets no_m1;
  no_m1.targets = {dl};
  const auto none = plan::compute_doses(no_m1, {&no_m1.targets[0]}, p, 45.0, "", warnings);
  CHECK(!none[0].adjustable);
  CHECK_THAT(none[0].arithmetic, Catch::Contains("no depth adjustment is possible"));
  CHECK_THROWS_AS(plan::compute_doses(all, sel, p, 45.0, "M1_nowhere", warnings), Error);
}

TEST_CASE("plan: a target's kind comes from its target-library entry, not its name", "[plan][unit]") {
  plan::Target t;
  for (const auto& [name, kind] : {std::pair<std::string, std::string>{"M1_hand_left", "motor"},
                                   {"M1_hand_right", "motor"},
                                   {"DLPFC_BA46", "prefrontal"},
                                   {"M1", ""},
                                   {"M1_hand_left_copy", ""},
                                   {"mni(-37,-21,58)", ""}}) {
    t.name = name;
    CHECK(plan::target_kind(t) == kind);
    CHECK(plan::is_motor_target(t) == (kind == "motor"));
  }
}

TEST_CASE("plan: report helpers escape text and encode base64", "[plan][unit]") {
  CHECK(report::base64("") == "");
  CHECK(report::base64("f") == "Zg==");
  CHECK(report::base64("fo") == "Zm8=");
  CHECK(report::base64("foobar") == "Zm9vYmFy");
  CHECK(report::html_escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  CHECK(report::direction_name({0, -1, 0}) == "posterior");
  CHECK(report::direction_name({-1, 0, 1}) == "left-superior");
}

TEST_CASE("plan: the QC grey window is the 1 % and 99.5 % order statistics", "[plan][unit]") {
  // Over 2^20 voxels (several histogram blocks), with ties, negatives, both zeros and values that
  // share one histogram bin; against a full sort.
  Grid g;
  g.dim = {160, 150, 120};
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 3);
  std::normal_distribution<float> wide(100.0f, 400.0f);
  std::uniform_real_distribution<float> narrow(1000.0f, 1000.01f);
  for (int round = 0; round < 2; ++round) {
    Image im(g, 0.0f);
    for (auto& x : im.data) {
      const int k = pick(rng);
      x = k == 0 ? std::round(wide(rng)) : k == 1 ? (round ? narrow(rng) : -0.0f) : k == 2 ? wide(rng) : narrow(rng);
    }
    std::vector<float> sorted = im.data;
    std::sort(sorted.begin(), sorted.end());
    const auto at = [&](double q) { return sorted[std::size_t(q * double(sorted.size() - 1))]; };
    const auto w = QcFigure::display_window(im);
    CHECK(w[0] == double(at(0.01)));
    CHECK(w[1] == double(at(0.995)));
  }
}

TEST_CASE("plan: the scalp rendering of a ball shows its disc, shaded as its sphere", "[plan][unit]") {
  // A 60 mm ball on a 1 mm grid seen from above: rays within the disc meet the sphere where the
  // shading formula says (Lambert with the render's light, faded with depth), the others see the
  // background, whatever the empty-space skipping does.
  const double radius = 60.0;
  Grid g;
  g.dim = {151, 151, 151};
  g.vox2ras = RasMatrix(Eigen::Matrix4d::Identity());
  for (int a = 0; a < 3; ++a) g.vox2ras.m(a, 3) = -75.0;
  Mask ball(g, 0);
  for (std::int64_t k = 0; k < 151; ++k)
    for (std::int64_t j = 0; j < 151; ++j)
      for (std::int64_t i = 0; i < 151; ++i) ball(i, j, k) = g.ras(i, j, k).v.norm() <= radius ? 1 : 0;
  const report::HeadSurface surface(ball);
  report::CoilDrawing coil;
  coil.pose = Pose(Eigen::Matrix4d::Identity());
  coil.pose.m.col(1) = Eigen::Vector4d(0, -1, 0, 0);
  coil.pose.m.col(2) = Eigen::Vector4d(0, 0, -1, 0);
  coil.pose.m.col(3) = Eigen::Vector4d(0, 0, radius + 10.0, 1);
  coil.handle_direction = {1, 0, 0};
  coil.scalp_point = {0, 0, radius};
  coil.cortical_point = {0, 0, radius - 15.0};
  coil.view_normal = {0, 0, 1};
  const report::ScalpRenderOptions o;  // 220 mm, 0.5 mm pixels: image right +x, up +y
  const report::ScalpRendering r = surface.render(coil, o);
  REQUIRE(r.width == 440);
  const Eigen::Vector3d light =
      (Eigen::Vector3d(0, 0, 1) + 0.45 * Eigen::Vector3d(0, 1, 0) - 0.3 * Eigen::Vector3d(1, 0, 0)).normalized();
  const int u = 220;  // x = 0.25 mm: clear of the wings, handle and marks for |y| >= 10 mm
  int checked = 0;
  for (int v = 0; v < r.height; ++v) {
    const double y = o.fov_mm / 2 - (v + 0.5) * o.pixel_mm;
    const std::uint8_t* px = &r.rgb[(std::size_t(v) * std::size_t(r.width) + std::size_t(u)) * 3];
    if (std::abs(y) >= 62.0 && std::abs(y) <= 100.0) {
      INFO("y " << y);
      CHECK((px[0] == 28 && px[1] == 32 && px[2] == 40));
      ++checked;
    } else if (std::abs(y) >= 10.0 && std::abs(y) <= 50.0) {
      const Eigen::Vector3d p(0.25, y, std::sqrt(radius * radius - y * y - 0.0625));
      const double fade = std::clamp(1.0 - (radius + 10.0 - p.z()) / 140.0, 0.3, 1.0);
      const double shade = (0.22 + 0.78 * std::max(0.0, p.normalized().dot(light))) * fade;
      INFO("y " << y);
      CHECK(std::abs(double(px[0]) - o.surface_rgb[0] * shade) <= 12.0);  // the voxel staircase tilts the normal
      ++checked;
    }
  }
  CHECK(checked > 250);
  CHECK(r.hit_scalp);
}

// ---- Through the binary, on the Colin27 head --------------------------------------------------------

namespace {

// protocol.json: verdict per train, dose arithmetic per target, citations.
void check_protocol_json(const std::string& plan, std::map<std::string, json>& want) {
  const json pj = json::parse(read_file(plan + "protocol.json"));
  CHECK(pj["protocol"]["id"] == "passard2007");
  REQUIRE(pj["safety"]["trains"].size() == 2);
  for (const auto& t : pj["safety"]["trains"]) CHECK(t["verdict"] == "ok");
  const double d_m1 = want["M1_hand_left"]["scalp_to_cortex_mm"], d_dl = want["DLPFC_BA46"]["scalp_to_cortex_mm"];
  REQUIRE(pj["dose"]["targets"].size() == 2);
  CHECK(pj["dose"]["k_pct_mso_per_mm"] == 3.0);
  CHECK(pj["dose"]["m1_reference"] == "M1_hand_left");
  for (const auto& d : pj["dose"]["targets"]) {
    const double expect = d["target"] == "M1_hand_left" ? 50.0 : 50.0 + 3.0 * (d_dl - d_m1);
    CHECK(d["mt_target_pct_mso"].get<double>() == Approx(expect).margin(1e-9));
    CHECK(d["intensity_pct_mso"].get<double>() == Approx(0.8 * expect).margin(1e-9));
    CHECK(!d["arithmetic"].get<std::string>().empty());
  }
  CHECK(pj["citations"].size() >= 3);
  for (const auto& c : pj["citations"]) {
    CHECK(!c["citation"].get<std::string>().empty());
    CHECK(!c["status"].get<std::string>().empty());
  }
  CHECK(pj["safety"]["inter_train_interval_rule"]["min_safe_s"] == 5);
  for (const auto& t : pj["safety"]["trains"]) CHECK(t["interval_verdict"] == "ok");
}

// The navigator T1: same grid and voxels as the input.
void check_navigator_t1(const std::string& plan, const std::string& t1) {
  const Image in = read_image(t1), nav_t1 = read_image(plan + "t1w_navigator.nii.gz");
  CHECK(nav_t1.grid.same_as(in.grid, 1e-4));
  CHECK(nav_t1.data == in.data);
  const std::string nii = read_file(plan + "t1w_navigator.nii.gz");
  CHECK((nii.size() > 2 && std::uint8_t(nii[0]) == 0x1f && std::uint8_t(nii[1]) == 0x8b));  // really gzip
}

// The report: self-contained, every picture a data URI (2 per target + the earlier QC picture).
void check_report(const std::string& plan) {
  const std::string html = read_file(plan + "report.html");
  std::size_t images = 0;  // (no std::regex: it recurses per character on 100 kB tags)
  for (std::size_t at = html.find("<img"); at != std::string::npos; at = html.find("<img", at + 1), ++images) {
    const std::size_t end = html.find('>', at);
    REQUIRE(end != std::string::npos);
    const std::string tag = html.substr(at, std::min<std::size_t>(end - at, 200));
    CHECK_THAT(tag, Catch::Contains("src=\"data:image/png;base64,"));
    CHECK(html.substr(at, end - at).find("src=", tag.find("src=") + 4) == std::string::npos);
  }
  CHECK(images == 5);  // 2 per target (no dseg.nii.gz here: no cortical view) + the earlier QC
  // One box of what to check, one Sources section; no per-row flags; the guideline at DLPFC.
  CHECK(count_of(html, "class=\"checks\"") == 1);
  CHECK(count_of(html, "id=\"sources\"") == 1);
  CHECK(count_of(html, "unverified:") == 0);
  CHECK(count_of(html, "[row not verified]") == 0);
  CHECK(count_of(html, "Rossi S et al. (2009)") >= 1);
  CHECK_THAT(html, Catch::Contains("Chen R et al. (1997)") && Catch::Contains("Clin Neurophysiol 118:1617-1625") &&
                       Catch::Contains("level B to high-frequency rTMS for fibromyalgia pain") &&
                       Catch::Contains("no cortical view"));
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  CHECK_THAT(html, Catch::Contains("@media print") && Catch::Contains("PASSES") && Catch::Contains("evidence level") &&
                       Catch::Contains("MT_target = RMT + k x (d_target - d_M1)") &&
                       Catch::Contains("skull-strip QC") && Catch::Contains("RAS+ millimetres"));
}

}  // namespace

TEST_CASE("plan: export writes every file and each navigator file reads back to the targets.json pose", "[plan]") {
  COLIN_OR_SKIP(c);
  const std::string out = testing::temp_dir("plan_export");
  const auto r = testing::run(export_cmd(c->targets, c->t1, out, "--protocol passard2007 --rmt 50 --strict"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);  // Passard 2007 (10 Hz, 80% RMT, 8 s trains) passes under --strict
  const std::string plan = out + "/plan/";
  // Files found the way a name-driven reader finds them: Localite's by their own names.
  const name_reader::Folder found = name_reader::read_folder(plan);
  REQUIRE(found.instrument_markers.size() == 1);
  REQUIRE(found.entry_targets.size() == 1);
  const std::string im_name = found.instrument_markers.begin()->first;
  const std::string stamp = im_name.substr(16, 17);
  for (const auto& name : plan::output_names(stamp)) CHECK(fs::is_regular_file(plan + name));
  CHECK(found.entry_targets.begin()->first == "EntryTarget" + stamp + ".xml");
  CHECK(found.brainsight.size() == 2);
  CHECK(found.ant.size() == 1);
  CHECK(!fs::exists(plan + "localite_instrument_markers.xml"));

  std::map<std::string, json> want;
  for (const auto& t : c->doc["targets"]) want[t["name"].get<std::string>()] = t;
  const auto check_markers = [&](const std::vector<nav::Marker>& got, const std::string& file, bool points) {
    REQUIRE(got.size() == want.size());
    for (const auto& m : got) {
      REQUIRE(want.count(m.name));
      check_pose(m.pose.m, pose_of(want[m.name]), file + " " + m.name);
      if (points) {
        REQUIRE(m.target);
        REQUIRE(m.entry);
        CHECK((*m.target - vec_of(want[m.name]["cortical_ras"])).norm() < kTol);
        CHECK((*m.entry - vec_of(want[m.name]["scalp_ras"])).norm() < kTol);
      }
    }
  };
  const auto loc = nav::read_localite_markers(read_file(plan + im_name), "loc");
  CHECK(loc.space == nav::LocaliteSpace::ras);
  check_markers(loc.markers, "localite", false);
  check_markers(found.instrument_markers.begin()->second, "localite by name", false);
  const auto b12 = nav::read_brainsight_targets(read_file(plan + "brainsight_v12.txt"), "b12");
  CHECK(b12.version == 12);
  CHECK(b12.coordinate_system == "NIfTI:Aligned");
  check_markers(b12.targets, "brainsight v12", false);
  const auto b14 = nav::read_brainsight_targets(read_file(plan + "brainsight_v14.txt"), "b14");
  CHECK(b14.version == 14);
  CHECK(b14.coordinate_system == "NIfTI:Q:Aligned");
  check_markers(b14.targets, "brainsight v14", false);
  const auto ant = nav::read_ant_markers(read_file(plan + "ant_markers.mrk"), "ant");
  check_markers(ant.markers, "ant", false);
  REQUIRE(ant.image);
  CHECK(ant.image->pixdim[1] == Approx(1.0));
  check_markers(nav::read_markers_tsv(read_file(plan + "markers.tsv"), "tsv"), "markers.tsv", true);
  const auto& et = found.entry_targets.begin()->second;
  REQUIRE(et.size() == want.size());
  for (const auto& e : et) {
    CHECK((e.entry - vec_of(want[e.name]["scalp_ras"])).norm() < kTol);
    CHECK((e.target - vec_of(want[e.name]["cortical_ras"])).norm() < kTol);
  }
  const std::string tms = read_file(plan + "tms.tsv");
  CHECK_THAT(tms, Catch::Contains("M1_hand_left\tpassard2007") && Catch::Contains("DLPFC_BA46\tpassard2007"));

  check_protocol_json(plan, want);
  check_navigator_t1(plan, c->t1);
  check_report(plan);

  const json rec = json::parse(read_file(plan + "protocol_export.json"));
  CHECK(rec["tool"] == "protocol-export");
  CHECK(rec["inputs"]["targets"]["sha256"] == sha256_file(c->targets));

  SECTION("existing outputs are not overwritten without --force") {
    const std::string before = sha256_file(plan + "report.html");
    // Another plan's Localite file in the folder is refused without --force, replaced with it.
    write_text(plan + "InstrumentMarker20000101000000000.xml", read_file(plan + im_name));
    const auto again = testing::run(export_cmd(c->targets, c->t1, out, "--protocol passard2007"));
    CHECK(again.exit_code == 1);
    CHECK_THAT(again.err, Catch::Contains("exists") && Catch::Contains("--force"));
    CHECK(sha256_file(plan + "report.html") == before);
    const auto forced = testing::run(export_cmd(c->targets, c->t1, out, "--protocol mhalla2011 --force"));
    CHECK(forced.exit_code == 0);
    CHECK(json::parse(read_file(plan + "protocol.json"))["protocol"]["id"] == "mhalla2011");
    CHECK(!fs::exists(plan + "InstrumentMarker20000101000000000.xml"));
    const name_reader::Folder after = name_reader::read_folder(plan);
    CHECK(after.instrument_markers.size() == 1);
    CHECK(after.entry_targets.size() == 1);
    // Same targets, same Localite files: the same names as before.
    CHECK(after.instrument_markers.begin()->first == im_name);
  }
}

TEST_CASE("plan: --localite-lps writes LPS files that read back to the same RAS pose", "[plan]") {
  COLIN_OR_SKIP(c);
  const std::string out = testing::temp_dir("plan_lps");
  const auto r =
      testing::run(export_cmd(c->targets, c->t1, out, "--protocol passard2007 --localite-lps --target M1_hand_left"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const name_reader::Folder found = name_reader::read_folder(out + "/plan");
  REQUIRE(found.instrument_markers.size() == 1);
  REQUIRE(found.entry_targets.size() == 1);
  const std::string xml = read_file(out + "/plan/" + found.instrument_markers.begin()->first);
  CHECK_THAT(xml, Catch::Contains("coordinateSpace=\"LPS\""));
  const auto loc = nav::read_localite_markers(xml, "loc");
  CHECK(loc.space == nav::LocaliteSpace::lps);
  REQUIRE(loc.markers.size() == 1);
  check_pose(loc.markers[0].pose.m, pose_of(c->doc["targets"][0]), "localite LPS");
  const auto& et = found.entry_targets.begin()->second;
  REQUIRE(et.size() == 1);
  CHECK((et[0].target - vec_of(c->doc["targets"][0]["cortical_ras"])).norm() < kTol);
}

TEST_CASE("plan: a 20 Hz 120% 5 s train is flagged, and refused under --strict with nothing written", "[plan]") {
  COLIN_OR_SKIP(c);
  const std::string dir = testing::temp_dir("plan_unsafe");
  write_text(dir + "/unsafe.json", user_protocol(20, 120, 5, 10, 30));
  const auto strict = testing::run(
      export_cmd(c->targets, c->t1, dir, "--protocol " + dir + "/unsafe.json --strict --subject-dir " + c->dir));
  CHECK(strict.exit_code == 1);
  CHECK_THAT(strict.err, Catch::Contains("EXCEEDS") && Catch::Contains("--strict") && Catch::Contains("20 Hz"));
  CHECK(!fs::exists(dir + "/plan"));
  // Trains within the table but 2 s apart break the inter-train interval rule (Chen 1997): refused.
  write_text(dir + "/quick.json", user_protocol(10, 80, 5, 10, 2));
  const auto quick = testing::run(
      export_cmd(c->targets, c->t1, dir, "--protocol " + dir + "/quick.json --strict --subject-dir " + c->dir));
  CHECK(quick.exit_code == 1);
  CHECK_THAT(quick.err,
             Catch::Contains("BREAKS the interval rule") && Catch::Contains("--strict") && Catch::Contains("Chen"));
  CHECK(!fs::exists(dir + "/plan"));
  // A preset without a train structure cannot be checked: --strict refuses it too.
  const auto unknown = testing::run(export_cmd(c->targets, c->t1, dir, "--protocol lefaucheur2020_fm_m1_hf --strict"));
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("cannot be confirmed") && Catch::Contains("--strict"));
  CHECK(!fs::exists(dir + "/plan"));

  const auto flagged = testing::run(export_cmd(c->targets, c->t1, dir, "--protocol " + dir + "/unsafe.json"));
  INFO(flagged.err);
  REQUIRE(flagged.exit_code == 0);
  CHECK_THAT(flagged.err, Catch::Contains("SAFETY") && Catch::Contains("EXCEEDS"));
  const json pj = json::parse(read_file(dir + "/plan/protocol.json"));
  for (const auto& t : pj["safety"]["trains"]) CHECK(t["verdict"] == "exceeds");
  CHECK_THAT(read_file(dir + "/plan/report.html"), Catch::Contains("EXCEEDS LIMIT") && Catch::Contains("tone-bad"));
}

TEST_CASE("plan: malformed targets.json exits 1 naming the file and the field, writing nothing", "[plan]") {
  COLIN_OR_SKIP(c);
  const std::string dir = testing::temp_dir("plan_bad_targets");
  const auto check_bad = [&](const std::string& label, const std::string& text, const std::string& field) {
    const std::string path = dir + "/targets_" + label + ".json";
    write_text(path, text);
    const auto r = testing::run(export_cmd(path, c->t1, dir, "--protocol passard2007 --subject-dir " + c->dir));
    INFO(label << ": " << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains(path) && Catch::Contains(field));
    CHECK(!fs::exists(dir + "/plan"));
  };
  json doc = c->doc;
  doc["targets"][0].erase("scalp_ras");
  check_bad("missing", doc.dump(), "targets[0].scalp_ras: is missing");
  doc = c->doc;
  doc["targets"][1]["scalp_to_cortex_mm"] = "20";
  check_bad("type", doc.dump(), "targets[1].scalp_to_cortex_mm: must be a number");
  doc = c->doc;
  doc["schema"] = "tmsplan-targets/9";
  check_bad("schema", doc.dump(), "schema");
  doc = c->doc;
  for (int r = 0; r < 3; ++r)
    doc["targets"][0]["coil_pose_ras"][r][0] = -doc["targets"][0]["coil_pose_ras"][r][0].get<double>();
  check_bad("mirrored", doc.dump(), "mirrored");
  doc = c->doc;
  doc["targets"][0]["cortical_ras"][1] = std::nan("");  // nlohmann writes NaN as null
  check_bad("nan_null", doc.dump(), "targets[0].cortical_ras[1]");
  std::string text = c->doc.dump();
  text.replace(text.find("\"scalp_to_cortex_mm\":") + 21, 0, "NaN, \"x\":");
  check_bad("nan_literal", text, "not valid JSON");
  doc = c->doc;
  doc["targets"][0]["handle_direction_ras"] = {0, 0.5, 0};
  check_bad("unit", doc.dump(), "handle_direction_ras: must be a unit vector");
}

TEST_CASE("plan: a T1 that is not the reference of the targets is refused, same grid with other bytes warns",
          "[plan]") {
  COLIN_OR_SKIP(c);
  const std::string dir = testing::temp_dir("plan_t1");
  Image shifted = read_image(c->t1);
  shifted.grid.vox2ras.m(0, 3) += 2.0;
  WriteOptions wo;
  wo.force = true;
  write_image(dir + "/shifted.nii.gz", shifted, wo);
  const auto r = testing::run(export_cmd(c->targets, dir + "/shifted.nii.gz", dir, "--protocol passard2007"));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("not the reference T1") && Catch::Contains("shifted.nii.gz"));
  CHECK(!fs::exists(dir + "/plan"));

  // The same voxels on the same grid, other bytes (int16 re-encoding): accepted with a warning.
  Image same = read_image(c->t1);
  wo.type = DiskType::Int16;
  write_image(dir + "/same.nii.gz", same, wo);
  const auto ok =
      testing::run(export_cmd(c->targets, dir + "/same.nii.gz", dir, "--protocol passard2007 --target DLPFC_BA46"));
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.err, Catch::Contains("sha256 differs"));
}

TEST_CASE("plan: without an M1 target the dose says no adjustment is possible", "[plan]") {
  COLIN_OR_SKIP(c);
  const std::string dir = testing::temp_dir("plan_no_m1");
  json doc = c->doc;
  doc["targets"].erase(0);
  write_text(dir + "/targets.json", doc.dump(2));
  const auto r = testing::run(
      export_cmd(dir + "/targets.json", c->t1, dir,
                 "--protocol lefaucheur2020_fm_dlpfc_hf --rmt 40 --head-mask " + c->dir + "/head_mask.nii.gz"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json pj = json::parse(read_file(dir + "/plan/protocol.json"));
  CHECK(pj["dose"]["adjustment_possible"] == false);
  CHECK_THAT(pj["dose"]["targets"][0]["arithmetic"].get<std::string>(),
             Catch::Contains("no depth adjustment is possible"));
  CHECK(pj["safety"]["trains"][0]["verdict"] == "unknown");  // incomplete preset: no train structure
  const std::string html = read_file(dir + "/plan/report.html");
  CHECK_THAT(html, Catch::Contains("NOT POSSIBLE"));
  CHECK_THAT(html, Catch::Contains("No QC pictures of earlier steps"));
}

// ---- Shared data: a real scanner head (Philips MPRAGE, not in MNI space) ---------------------------

TEST_CASE("plan: export on the Philips T1 round-trips through every navigator file", "[plan][data]") {
  const std::string data = testing::shared_data();
  if (data.empty()) {
    testing::skip("shared data not found (set TMSPLAN_SHARED_DATA)");
  }
  const std::string t1_path = data + "/philips-mprage/T1w.nii.gz";
  const std::string dir = testing::temp_dir("plan_philips");
  const Image t1 = read_image(t1_path);
  const Mask head = threshold_head(t1);
  const Eigen::Vector3d centre = centroid_ras(head);
  // Left-superior and left-anterior points 20 mm under the scalp.
  json targets = json::array();
  for (const auto& [name, dir_ras] : {std::pair<std::string, Eigen::Vector3d>{"M1_hand_left", {-0.45, -0.15, 0.88}},
                                      std::pair<std::string, Eigen::Vector3d>{"DLPFC_BA46", {-0.55, 0.6, 0.58}}}) {
    const Eigen::Vector3d n = dir_ras.normalized();
    const double t = scalp_distance(head, centre, n);
    targets.push_back(make_target(name, centre + (t - 20) * n, n, Eigen::Vector3d(0, -1, 0), head));
  }
  const json doc = targets_doc(t1_path, t1, targets);
  write_text(dir + "/targets.json", doc.dump(2));
  const auto r = testing::run(export_cmd(dir + "/targets.json", t1_path, dir, "--protocol passard2007 --rmt 42"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string plan = dir + "/plan/";
  // The Localite, Brainsight and ANT files load in a name-driven reader (files found by their names).
  const name_reader::Folder found = name_reader::read_folder(plan);
  REQUIRE(found.instrument_markers.size() == 1);
  REQUIRE(found.entry_targets.size() == 1);
  REQUIRE(found.brainsight.size() == 2);
  REQUIRE(found.ant.size() == 1);
  const auto& loc = found.instrument_markers.begin()->second;
  const auto& b14 = found.brainsight.at("brainsight_v14.txt");
  const auto& ant = found.ant.begin()->second;
  REQUIRE(loc.size() == 2);
  REQUIRE(b14.size() == 2);
  REQUIRE(ant.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const Eigen::Matrix4d want = pose_of(doc["targets"][i]);
    check_pose(loc[i].pose.m, want, "localite");
    check_pose(b14[i].pose.m, want, "brainsight");
    check_pose(ant[i].pose.m, want, "ant");
  }
  const Image nav_t1 = read_image(plan + "t1w_navigator.nii.gz");
  CHECK(nav_t1.grid.same_as(t1.grid, 1e-3));
}
