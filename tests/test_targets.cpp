// target-pick's library on Colin27 (which is in MNI space, so the mapping is known exactly), and
// on the same head moved by a known rigid transform (only its header changes: exact).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "support.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/resample.hpp"
#include "tmsplan/targets.hpp"

using namespace tmsplan;
using namespace tmsplan::targets;

namespace {

struct Colin {
  Subject subject;
  Image t1;
};

// Colin27 as a subject: head by threshold-and-fill, GM by intensity inside the BET brain,
// Brodmann atlas from mricron-data; `move` is a rigid transform applied to the world frame.
Colin colin(const Eigen::Matrix4d& move) {
  static const Image head_t1 = read_image(testing::colin_head());
  static const Image bet = read_image("/usr/share/mricron/templates/ch2bet.nii.gz");
  static const Image ba = read_image("/usr/share/mricron/templates/brodmann.nii.gz");
  Colin c;
  c.t1 = head_t1;
  c.t1.grid.vox2ras = RasMatrix(move * head_t1.grid.vox2ras.m);
  Subject& s = c.subject;
  s.grid = c.t1.grid;
  Mask head = fill_holes(largest_component(threshold(head_t1, 0.2f * float(quantile(head_t1, 0.995)))));
  s.head = fill_holes_2d(head);
  s.head.grid = s.grid;
  s.brain = threshold(bet, 0.0f);
  s.brain.grid = s.grid;
  // Colin's GM lies between the CSF and WM intensities of the brain.
  const double lo = quantile(head_t1, 0.25, &s.brain), hi = quantile(head_t1, 0.6, &s.brain);
  s.gm = Mask(s.grid, 0);
  for (std::size_t i = 0; i < s.gm.data.size(); ++i)
    s.gm.data[i] = s.brain.data[i] && head_t1.data[i] > lo && head_t1.data[i] < hi;
  s.brodmann = Labels(s.grid, 0);
  for (std::size_t i = 0; i < ba.data.size(); ++i) s.brodmann.data[i] = static_cast<std::uint8_t>(ba.data[i]);
  const Eigen::Matrix4d inv = move.inverse();
  s.mni_to_subject = [move](const Eigen::Vector3d& p) { return (move * p.homogeneous()).head<3>().eval(); };
  s.subject_to_mni = [inv](const Eigen::Vector3d& p) { return (inv * p.homogeneous()).head<3>().eval(); };
  return c;
}

// Colin27 on another voxel lattice: the T1 resampled (linear) onto its own grid shifted by
// `shift_vox` voxels, the masks made from it as colin() makes them (so they differ from the
// original's by the lattice alone); MNI = world, as in colin().
Colin colin_regridded(const Eigen::Vector3d& shift_vox) {
  static const Image head_t1 = read_image(testing::colin_head());
  static const Image bet = read_image("/usr/share/mricron/templates/ch2bet.nii.gz");
  static const Image ba = read_image("/usr/share/mricron/templates/brodmann.nii.gz");
  Grid g = head_t1.grid;
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  shift.topRightCorner<3, 1>() = shift_vox;
  g.vox2ras = RasMatrix(head_t1.grid.vox2ras.m * shift);
  const Eigen::Matrix4d id = Eigen::Matrix4d::Identity();
  Colin c;
  c.t1 = resample_affine(head_t1, g, id, Interp::Linear);
  Subject& s = c.subject;
  s.grid = g;
  Mask head = fill_holes(largest_component(threshold(c.t1, 0.2f * float(quantile(head_t1, 0.995)))));
  s.head = fill_holes_2d(head);
  s.brain = threshold(resample_affine(bet, g, id, Interp::Linear), 0.0f);
  const double lo = quantile(c.t1, 0.25, &s.brain), hi = quantile(c.t1, 0.6, &s.brain);
  s.gm = Mask(s.grid, 0);
  for (std::size_t i = 0; i < s.gm.data.size(); ++i)
    s.gm.data[i] = s.brain.data[i] && c.t1.data[i] > lo && c.t1.data[i] < hi;
  const Image bag = resample_affine(ba, g, id, Interp::Nearest);
  s.brodmann = Labels(s.grid, 0);
  for (std::size_t i = 0; i < bag.data.size(); ++i) s.brodmann.data[i] = static_cast<std::uint8_t>(bag.data[i]);
  s.mni_to_subject = [](const Eigen::Vector3d& p) { return p; };
  s.subject_to_mni = [](const Eigen::Vector3d& p) { return p; };
  return c;
}

Request lib(const std::string& name) {
  Request r;
  r.name = name;
  return r;
}

Eigen::Matrix4d rigid(double ax, double ay, double az, const Eigen::Vector3d& t) {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m.topLeftCorner<3, 3>() =
      (Eigen::AngleAxisd(az, Eigen::Vector3d::UnitZ()) * Eigen::AngleAxisd(ay, Eigen::Vector3d::UnitY()) *
       Eigen::AngleAxisd(ax, Eigen::Vector3d::UnitX()))
          .toRotationMatrix();
  m.topRightCorner<3, 1>() = t;
  return m;
}

bool in_mask(const Mask& m, const Eigen::Vector3d& p) {
  const auto ijk = ras_to_voxel(m.grid.vox2ras, RasPoint(p)).v;
  const auto i = std::lround(ijk[0]), j = std::lround(ijk[1]), k = std::lround(ijk[2]);
  return m.grid.inside(i, j, k) && m(i, j, k);
}

}  // namespace

TEST_CASE("target library loads with citations and EEG positions", "[targets][unit]") {
  const Library library = load_library();
  REQUIRE(library.find("M1_hand_left"));
  CHECK(library.find("M1_hand_left")->mni.isApprox(Eigen::Vector3d(-37, -21, 58)));
  CHECK(library.find("DLPFC_BA46"));
  CHECK(library.eeg_mni.count("F3") == 1);
  for (const auto& e : library.entries) CHECK(!e.source.empty());
}

TEST_CASE("M1 hand target on Colin27: grey matter, scalp boundary, pose along the normal", "[targets]") {
  const Library library = load_library();
  const Colin c = colin(Eigen::Matrix4d::Identity());
  const Scalp scalp(c.subject.head);
  const Pick p = pick(c.subject, scalp, library, lib("M1_hand_left"));
  CHECK(in_mask(c.subject.gm, p.cortical));
  CHECK((p.cortical - Eigen::Vector3d(-37, -21, 58)).norm() < 15.0);
  CHECK(c.subject.brodmann(std::lround(p.cortical[0] + 90), std::lround(p.cortical[1] + 125),
                           std::lround(p.cortical[2] + 71)) == 4);
  // The scalp point is on the head-mask boundary: inside within one voxel, outside within one voxel.
  CHECK(in_mask(c.subject.head, p.scalp - 1.0 * p.normal));
  CHECK(!in_mask(c.subject.head, p.scalp + 1.0 * p.normal));
  // Independent normal: gradient of a differently smoothed head mask.
  const Image smooth = gaussian_smooth(to_image(c.subject.head), 2.5);
  Eigen::Vector3d g;
  for (int a = 0; a < 3; ++a) {
    Eigen::Vector3d d = Eigen::Vector3d::Zero();
    d[a] = 1.0;
    g[a] = sample(smooth, p.scalp + d + Eigen::Vector3d(90, 126, 72), Interp::Linear) -
           sample(smooth, p.scalp - d + Eigen::Vector3d(90, 126, 72), Interp::Linear);
  }
  const Eigen::Vector3d z = p.pose.block<3, 1>(0, 2);
  CHECK(angle_deg(z, g) < 10.0);  // z points into the head, along the gradient of the indicator
  // Pose: orthonormal, right-handed; handle backwards and to the left (left hemisphere).
  const Eigen::Matrix3d r = p.pose.topLeftCorner<3, 3>();
  CHECK((r.transpose() * r - Eigen::Matrix3d::Identity()).norm() < 1e-9);
  CHECK(r.determinant() == Approx(1.0));
  CHECK(p.handle.dot(Eigen::Vector3d(-1, -1, 0).normalized()) > 0.6);
  CHECK(p.scalp_to_cortex_mm > 5.0);
  CHECK(p.scalp_to_cortex_mm < 30.0);
  CHECK((p.centre - p.scalp).norm() == Approx(4.0).margin(1e-6));
}

TEST_CASE("the same head moved in the world gives the moved answer", "[targets]") {
  const Library library = load_library();
  const Colin a = colin(Eigen::Matrix4d::Identity());
  const Eigen::Matrix4d move = rigid(0.2, -0.15, 0.3, Eigen::Vector3d(12, -7, 20));
  const Colin b = colin(move);
  const Scalp sa(a.subject.head), sb(b.subject.head);
  for (const std::string name : {"M1_hand_left", "M1_hand_right", "DLPFC_BA46"}) {
    const Pick pa = pick(a.subject, sa, library, lib(name));
    const Pick pb = pick(b.subject, sb, library, lib(name));
    const Eigen::Vector3d back = (move.inverse() * pb.cortical.homogeneous()).head<3>();
    CHECK((back - pa.cortical).norm() < 2.0);
    const Eigen::Vector3d zb = move.inverse().topLeftCorner<3, 3>() * pb.pose.block<3, 1>(0, 2);
    CHECK(angle_deg(zb, pa.pose.block<3, 1>(0, 2)) < 5.0);
    const Eigen::Vector3d hb = move.inverse().topLeftCorner<3, 3>() * pb.handle;
    CHECK(angle_deg(hb, pa.handle) < 5.0);
  }
}

TEST_CASE("the same head on another voxel lattice gives the same targets (sub-voxel points)", "[targets]") {
  // Only the lattice differs (the map to MNI is exact): what is left is the picking's own lattice
  // noise plus the masks' re-gridding. Voxel-centre answers differed by up to ~0.9 mm from the
  // lattice alone.
  const Library library = load_library();
  const Colin a = colin(Eigen::Matrix4d::Identity());
  const Scalp sa(a.subject.head);
  double sum = 0, worst = 0, worst_z = 0;
  int n = 0;
  for (const Eigen::Vector3d shift : {Eigen::Vector3d(0.5, 0.5, 0.5), Eigen::Vector3d(0.3, -0.4, 0.2)}) {
    const Colin b = colin_regridded(shift);
    const Scalp sb(b.subject.head);
    for (const std::string name : {"M1_hand_left", "M1_hand_right", "DLPFC_BA46", "DLPFC_BA9"}) {
      const Pick pa = pick(a.subject, sa, library, lib(name));
      const Pick pb = pick(b.subject, sb, library, lib(name));
      const double e = (pb.cortical - pa.cortical).norm();
      const double ez = angle_deg(pb.pose.block<3, 1>(0, 2), pa.pose.block<3, 1>(0, 2));
      INFO(name << " shift " << shift.transpose() << ": cortical " << e << " mm, coil z " << ez << " deg");
      CHECK(in_mask(b.subject.gm, pb.cortical));
      sum += e, worst = std::max(worst, e), worst_z = std::max(worst_z, ez), ++n;
    }
  }
  INFO("mean " << sum / n << " max " << worst << " mm; coil z max " << worst_z << " deg");
  // Issue 16's bounds for the copies: mean <= 0.5 mm, max <= 1.0 mm, coil z <= 1.5 deg. Measured
  // 2026-11-30: voxel-centre picking (before issue 16) mean 1.13, max 1.66 mm, coil z max 1.45 deg;
  // soft-min of voxel centres mean 0.77, max 1.66 mm, coil z max 1.26 deg; fields weighed on an
  // anatomical lattice (lib/targets/neighbourhood.cpp) mean 0.41, max 0.88 mm, coil z max 0.67 deg.
  // The masks are re-made on the new lattice, so part of what is left is theirs.
  CHECK(sum / n <= 0.5);
  CHECK(worst <= 1.0);
  CHECK(worst_z <= 1.5);
}

TEST_CASE("the nearest-grey-matter snap puts the target on the grey matter nearest the mapped point", "[targets]") {
  // The crown snap may move a mapped point that already lies in grey matter to a crown ~2 mm away
  // (docs/target-pick.md); `nearest` keeps it where the registration put it, on the cortex.
  const Library library = load_library();
  const Colin a = colin(Eigen::Matrix4d::Identity());
  const Scalp sa(a.subject.head);
  Options nearest;
  nearest.snap = Snap::Nearest;
  for (const std::string name : {"DLPFC_BA46", "DLPFC_BA9", "M1_hand_left"}) {
    const Pick crown = pick(a.subject, sa, library, lib(name));
    const Pick near = pick(a.subject, sa, library, lib(name), nearest);
    INFO(name << ": prior to GM " << near.prior_to_gm_mm << " mm, snap shift crown " << crown.snap_shift_mm
              << " mm, nearest " << near.snap_shift_mm << " mm; scalp to cortex " << crown.scalp_to_cortex_mm << " / "
              << near.scalp_to_cortex_mm << " mm");
    CHECK(in_mask(a.subject.gm, near.cortical));
    CHECK((near.prior - crown.prior).norm() < 1e-9);
    // A weighted mean of the grey matter around the point, settled onto the cortex along the coil
    // axis: within 1.5 mm of the nearest GM lattice point (measured 0.58-1.08 mm beyond it). The
    // crown snap travels up to 8.9 mm here (M1).
    CHECK(near.snap_shift_mm <= near.prior_to_gm_mm + 1.5);
    // M1's hand-knob refinement decides its point either way.
    if (name == "M1_hand_left") CHECK((near.cortical - crown.cortical).norm() < 0.5);
  }
}

// A grey-matter fraction like segment's: a partial-volume tent on the T1 intensity whose 0.5 level
// at voxel centres is exactly the GM mask's rule (lo < T1 < hi inside the brain): 1 at the GM level
// (lo + hi) / 2, 0 at the CSF and WM levels beyond lo and hi. Between voxel centres it is a
// continuous field, as segment's is.
static void add_fraction(const Image& t1, Subject& s) {
  const double lo = quantile(t1, 0.25, &s.brain), hi = quantile(t1, 0.6, &s.brain), g = 0.5 * (lo + hi);
  s.gm_probability = Image(s.grid, 0.0f);
  for (std::size_t i = 0; i < t1.data.size(); ++i)
    if (s.brain.data[i])
      s.gm_probability.data[i] = float(std::clamp(1.0 - std::abs(t1.data[i] - g) / (hi - lo), 0.0, 1.0));
}

TEST_CASE("with a grey-matter fraction the targets sit on its 0.5 level and follow the head onto another lattice",
          "[targets]") {
  // target-pick weighs segment's probseg_gm when the subject folder has one. The 0.4x0.4x1.5 mm copy
  // of the Philips scan labelled its DLPFC_BA46 spot CSF where the 1 mm scan has GM (the labels are
  // the fractions' argmax at voxel centres): 2.02 mm between the plans with the labels, 0.66 mm with
  // the fraction (2026-12-01, docs/target-pick.md).
  const Library library = load_library();
  Colin a = colin(Eigen::Matrix4d::Identity());
  add_fraction(a.t1, a.subject);
  const Scalp sa(a.subject.head);
  double worst_dlpfc = 0, worst_m1 = 0;
  for (const Eigen::Vector3d shift : {Eigen::Vector3d(0.5, 0.5, 0.5), Eigen::Vector3d(0.3, -0.4, 0.2)}) {
    Colin b = colin_regridded(shift);
    add_fraction(b.t1, b.subject);
    const Scalp sb(b.subject.head);
    for (const std::string name : {"M1_hand_left", "M1_hand_right", "DLPFC_BA46", "DLPFC_BA9"}) {
      const Pick pa = pick(a.subject, sa, library, lib(name));
      const Pick pb = pick(b.subject, sb, library, lib(name));
      const double e = (pb.cortical - pa.cortical).norm();
      const double f = sample(b.subject.gm_probability, ras_to_voxel(b.subject.grid.vox2ras, RasPoint(pb.cortical)).v,
                              Interp::Linear);
      INFO(name << " shift " << shift.transpose() << ": cortical " << e << " mm, GM fraction there " << f);
      CHECK(f >= 0.5);
      double& worst = name.rfind("M1", 0) == 0 ? worst_m1 : worst_dlpfc;
      worst = std::max(worst, e);
    }
  }
  INFO("largest move: DLPFC " << worst_dlpfc << " mm, M1 " << worst_m1 << " mm");
  // Measured 2026-12-01: DLPFC <= 0.29 mm (labels: 0.18 mm); M1 1.73 mm at one shift (labels:
  // 0.92 mm): on this synthetic fraction the hand knob's weighted mean moves with the lattice
  // (a known weakness, docs/target-pick.md); the real scans' copies improved (Colin27 0.225 ->
  // 0.208 mm mean, Philips 1.11 -> 0.98 mm).
  CHECK(worst_dlpfc <= 0.5);
  CHECK(worst_m1 <= 2.0);
}

TEST_CASE("bad targets are refused naming the target", "[targets]") {
  const Library library = load_library();
  const Colin c = colin(Eigen::Matrix4d::Identity());
  const Scalp scalp(c.subject.head);
  CHECK_THROWS_WITH(pick(c.subject, scalp, library, lib("M1_foot")), Catch::Contains("unknown target 'M1_foot'"));
  Request outside;
  outside.kind = Request::Kind::Ras;
  outside.name = "far";
  outside.value = Eigen::Vector3d(150, 0, 0);
  CHECK_THROWS_WITH(pick(c.subject, scalp, library, outside), Catch::Contains("target 'far' lies outside the head"));
  Request eeg;
  eeg.kind = Request::Kind::Eeg;
  eeg.name = "Q7";
  CHECK_THROWS_WITH(pick(c.subject, scalp, library, eeg), Catch::Contains("unknown EEG position 'Q7'"));
}

namespace {

// The subject with its field of view ending after slice `top` (the grid's upper k rows cut off,
// as a scan whose field of view stops there).
Subject cut_above(const Subject& s, std::int64_t top) {
  Subject c = s;
  c.grid.dim[2] = top + 1;
  auto cut = [&](auto& v) {
    auto out = v;
    out.grid = c.grid;
    out.data.assign(v.data.begin(), v.data.begin() + std::ptrdiff_t(c.grid.voxels()));
    v = std::move(out);
  };
  cut(c.head), cut(c.brain), cut(c.gm), cut(c.brodmann);
  return c;
}

// The subject on slices `step` voxels apart (every step-th slice of k kept: thick slices whose
// partial volume is left out, so only the scalp model's sampling differs).
Subject every_kth_slice(const Subject& s, std::int64_t step) {
  Subject c = s;
  c.grid.dim[2] = (s.grid.dim[2] + step - 1) / step;
  c.grid.vox2ras.m.col(2) *= double(step);
  auto thin_out = [&](auto& v) {
    auto out = v;
    out.grid = c.grid;
    out.data.resize(c.grid.voxels());
    for (std::int64_t k = 0; k < c.grid.dim[2]; ++k)
      for (std::int64_t j = 0; j < c.grid.dim[1]; ++j)
        for (std::int64_t i = 0; i < c.grid.dim[0]; ++i) out(i, j, k) = v(i, j, k * step);
    v = std::move(out);
  };
  thin_out(c.head), thin_out(c.brain), thin_out(c.gm), thin_out(c.brodmann);
  return c;
}

}  // namespace

TEST_CASE("on 5 mm slices every target is placed, near its place on the 1 mm slices", "[targets]") {
  const Library library = load_library();
  const Colin c = colin(Eigen::Matrix4d::Identity());
  const Subject thick = every_kth_slice(c.subject, 5);
  REQUIRE(thick.grid.spacing_mm()[2] == Approx(5.0));
  const Scalp fine(c.subject.head), coarse(thick.head);
  for (const char* name : {"M1_hand_left", "M1_hand_right", "DLPFC_BA46", "DLPFC_BA9"}) {
    INFO(name);
    const Pick a = pick(c.subject, fine, library, lib(name));
    // A 0.7 mm Gaussian between 5 mm slices met no voxel: targets read as outside the head.
    const Pick b = pick(thick, coarse, library, lib(name));
    INFO("cortical " << (a.cortical - b.cortical).norm() << " mm, coil centre " << (a.centre - b.centre).norm()
                     << " mm, coil z " << angle_deg(a.pose.block<3, 1>(0, 2), b.pose.block<3, 1>(0, 2)) << " deg");
    CHECK((a.cortical - b.cortical).norm() < 4.0);
    CHECK((a.centre - b.centre).norm() < 4.0);
    CHECK(angle_deg(a.pose.block<3, 1>(0, 2), b.pose.block<3, 1>(0, 2)) < 5.0);
  }
}

TEST_CASE("a field of view that cuts the head under the coil is refused, cut farther away it changes nothing",
          "[targets]") {
  const Library library = load_library();
  const Colin c = colin(Eigen::Matrix4d::Identity());
  const Pick whole = pick(c.subject, Scalp(c.subject.head), library, lib("M1_hand_left"));
  // Colin27's head ends at slice 173 and its brain at 160 (z = k - 71 mm). Cut at 165, above the
  // brain and about 29 mm from M1's scalp entry: the same answer.
  const Subject above_brain = cut_above(c.subject, 165);
  const Pick cut = pick(above_brain, Scalp(above_brain.head), library, lib("M1_hand_left"));
  CHECK((cut.cortical - whole.cortical).norm() < 1e-6);
  CHECK((cut.centre - whole.centre).norm() < 0.05);
  CHECK(angle_deg(cut.pose.block<3, 1>(0, 2), whole.pose.block<3, 1>(0, 2)) < 0.1);
  // Cut through the brain below M1's scalp entry (z = 69 mm): the coil would sit on the cut.
  const Subject through_brain = cut_above(c.subject, 140);
  CHECK_THROWS_WITH(pick(through_brain, Scalp(through_brain.head), library, lib("M1_hand_left")),
                    Catch::Contains("field of view cuts through the head"));
  // DLPFC's entry lies 30 mm below that cut: planned, with a warning that the brain is cut.
  auto cut_warning = [](const Pick& p) {
    return std::any_of(p.warnings.begin(), p.warnings.end(),
                       [](const std::string& w) { return w.find("cuts through the brain") != std::string::npos; });
  };
  const Pick dlpfc = pick(through_brain, Scalp(through_brain.head), library, lib("DLPFC_BA46"));
  CHECK(cut_warning(dlpfc));
  CHECK(!cut_warning(whole));
  CHECK(!cut_warning(cut));
}

TEST_CASE("DLPFC: F3 and the 5 cm rule are reported with their distance to the MRI target", "[targets]") {
  const Library library = load_library();
  const Colin c = colin(Eigen::Matrix4d::Identity());
  const Scalp scalp(c.subject.head);
  const Pick m1 = pick(c.subject, scalp, library, lib("M1_hand_left"));
  const Pick dlpfc = pick(c.subject, scalp, library, lib("DLPFC_BA46"));
  const auto classical = classical_positions(c.subject, scalp, library, dlpfc, m1);
  REQUIRE(classical.contains("eeg_F3_to_target_scalp_mm"));
  REQUIRE(classical.contains("rule_5cm_to_target_scalp_mm"));
  const double f3 = classical["eeg_F3_to_target_scalp_mm"], rule = classical["rule_5cm_to_target_scalp_mm"];
  CHECK(f3 < 60.0);
  CHECK(rule < 80.0);
  // The 5 cm rule point lies about 5 cm from the motor spot.
  const Eigen::Vector3d p(classical["rule_5cm_scalp_ras"][0], classical["rule_5cm_scalp_ras"][1],
                          classical["rule_5cm_scalp_ras"][2]);
  CHECK((p - m1.scalp).norm() > 40.0);
  CHECK((p - m1.scalp).norm() < 52.0);
}

TEST_CASE("scalp model: bucketed nearest boundary equals a full scan, entry lies along its normal", "[targets]") {
  const Colin c = colin(rigid(0.1, 0.05, -0.2, Eigen::Vector3d(3, -4, 5)));
  const Scalp scalp(c.subject.head);
  const Mask& head = c.subject.head;
  std::vector<Eigen::Vector3d> boundary;
  const auto& d = head.grid.dim;
  auto in = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return head.grid.inside(i, j, k) && head(i, j, k); };
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (in(i, j, k) && !(in(i - 1, j, k) && in(i + 1, j, k) && in(i, j - 1, k) && in(i, j + 1, k) &&
                             in(i, j, k - 1) && in(i, j, k + 1)))
          boundary.push_back(head.grid.ras(i, j, k).v);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-130.0, 130.0);
  for (int n = 0; n < 60; ++n) {
    const Eigen::Vector3d p(u(rng), u(rng), u(rng));
    double best = 1e18;
    for (const auto& q : boundary) best = std::min(best, (q - p).squaredNorm());
    CHECK((scalp.nearest_boundary(p) - p).squaredNorm() == Approx(best));
  }
  // Entries for points inside the head: on the surface (level 0.5), and the outward normal there
  // points back at the target (within a few degrees).
  for (const Eigen::Vector3d target :
       {Eigen::Vector3d(-40, -20, 55), Eigen::Vector3d(30, 40, 30), Eigen::Vector3d(0, -60, 40)}) {
    const Eigen::Vector3d t = (rigid(0.1, 0.05, -0.2, Eigen::Vector3d(3, -4, 5)) * target.homogeneous()).head<3>();
    const Eigen::Vector3d e = scalp.entry(t);
    CHECK(scalp.inside_level(e) == Approx(0.5).margin(0.02));
    CHECK(angle_deg(scalp.normal(e), e - t) < 3.0);
    CHECK((e - t).norm() <= (scalp.nearest(t) - t).norm() + 3.0);
  }
}

TEST_CASE("a copy of a head that is not the template gives its targets and coil poses back", "[copies][data]") {
  // Colin27's copies flatter the pipeline: there the subject is the registration's template. Here
  // the Philips scan is turned, shifted, re-gridded obliquely at 1.1 mm and given a 30 % bias and
  // noise (philips-oblique-bias of data/samples/philips-copies.json), both are planned, and the
  // copy's targets are brought back through the known transform (bench-eval copy-targets).
  // Measured 2026-12-01 (docs/target-pick.md, docs/skull-strip.md): M1 left/right 0.66 / 0.26 mm,
  // DLPFC 1.58 / 1.64 mm (their mapped MNI points already differ by that much); coil z max 0.39 deg.
  // Before the knob was scored in MNI mm and the head mask followed the bias, M1 left was 1.68 mm
  // and its coil z 6.8 deg. Since the registration starts without shear (fourth session): M1
  // 0.38 / 0.47 mm, DLPFC 0.85 / 0.50 mm, coil z max 1.05 deg.
  const std::string data = testing::shared_data();
  if (data.empty() || !std::filesystem::exists(data + "/philips-mprage/T1w.nii.gz"))
    testing::skip("../shared/data/philips-mprage absent");
  const std::string t1 = data + "/philips-mprage/T1w.nii.gz", dir = testing::temp_dir("targets-philips-copy");
  auto spec =
      nlohmann::json::parse(tmsplan::read_file(std::string(TMSPLAN_SOURCE_DIR) + "/data/samples/philips-copies.json"));
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& c : spec["copies"])
    if (c["name"] == "philips-oblique-bias") kept.push_back(c);
  REQUIRE(kept.size() == 1);
  spec["copies"] = kept;
  tmsplan::write_file_atomic(dir + "/spec.json", spec.dump(1), true);
  const auto made = testing::run(testing::bin("make-samples") + " --spec " + dir + "/spec.json --source " + t1 +
                                 " --out " + dir + "/samples --quiet");
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  const std::string plan = "TMSPLAN_BIN=" + std::string(TMSPLAN_BIN_DIR) + " " + std::string(TMSPLAN_SOURCE_DIR) +
                           "/scripts/plan-subject.sh ";
  const std::string targets =
      " --target M1_hand_left --target M1_hand_right --target DLPFC_BA46 --target DLPFC_BA9 --threads 2 --no-efield";
  for (const auto& [input, out] :
       {std::pair<std::string, std::string>{t1, "original"}, {dir + "/samples/philips-oblique-bias.nii.gz", "copy"}}) {
    std::filesystem::create_directories(dir + "/" + out);
    const auto r = testing::run(plan + input + " " + dir + "/" + out + targets);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  const auto cmp = testing::run(testing::bin("bench-eval") + " copy-targets " + dir + "/samples/copies.json " +
                                "philips-oblique-bias " + dir + "/original/targets.json " + dir + "/copy/targets.json");
  INFO(cmp.out << cmp.err);
  REQUIRE(cmp.exit_code == 0);
  std::istringstream lines(cmp.out);
  std::string name, key;
  int n = 0;
  while (lines >> name) {
    double cortical = 0, scalp = 0, coil_z = 0;
    lines >> key >> cortical >> key >> scalp >> key >> coil_z;
    std::getline(lines, key);
    INFO(name << ": cortical " << cortical << " mm, scalp " << scalp << " mm, coil z " << coil_z << " deg");
    CHECK(coil_z <= 1.5);
    CHECK(cortical <= (name.rfind("M1_", 0) == 0 ? 1.0 : 2.5));
    ++n;
  }
  CHECK(n == 4);
}
