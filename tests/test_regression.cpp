// Regression: the whole pipeline on the small sample head, compared with stored figures
// (tests/regression/small-2mm.json). CTest label "regression".
#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support.hpp"
#include "tmsplan/files.hpp"

namespace {
double at_path(const nlohmann::json& j, const std::string& dotted) {
  const nlohmann::json* node = &j;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    node = &node->at(key);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node->get<double>();
}
}  // namespace

TEST_CASE("pipeline on the small sample head reproduces the stored figures", "[regression]") {
  const std::string samples = testing::samples_dir();
  if (samples.empty()) {
    testing::skip("samples not generated (run make-samples)");
  }
  const auto expected =
      nlohmann::json::parse(tmsplan::read_file(std::string(TMSPLAN_SOURCE_DIR) + "/tests/regression/small-2mm.json"));
  const std::string out = testing::temp_dir("regression-small-2mm");
  const auto r =
      testing::run("TMSPLAN_BIN=" + std::string(TMSPLAN_BIN_DIR) + " " + std::string(TMSPLAN_SOURCE_DIR) +
                   "/scripts/plan-subject.sh " + samples + "/small-2mm.nii.gz " + out + " --threads 2 --rmt 50");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const auto& [name, spec] : expected["figures"].items()) {
    const std::string step = name.substr(0, name.find('.'));
    const auto record = nlohmann::json::parse(tmsplan::read_file(out + "/" + step + ".json"));
    const double got = at_path(record["figures"], name.substr(name.find('.') + 1));
    const double want = spec["expected"], tol = spec["relative_tolerance"];
    INFO(name << ": got " << got << ", expected " << want << " +- " << tol * 100 << "%");
    CHECK(std::abs(got - want) <= tol * std::abs(want));
  }
  const auto targets = nlohmann::json::parse(tmsplan::read_file(out + "/targets.json"));
  for (const auto& [name, spec] : expected["targets"].items()) {
    bool found = false;
    for (const auto& t : targets["targets"]) {
      if (t["name"] != name) continue;
      found = true;
      Eigen::Vector3d got(t["cortical_ras"][0], t["cortical_ras"][1], t["cortical_ras"][2]);
      Eigen::Vector3d want(spec["cortical_ras"][0], spec["cortical_ras"][1], spec["cortical_ras"][2]);
      INFO(name << " cortical target moved by " << (got - want).norm() << " mm");
      CHECK((got - want).norm() <= double(expected["target_tolerance_mm"]));
      CHECK(std::abs(double(t["scalp_to_cortex_mm"]) - double(spec["scalp_to_cortex_mm"])) <=
            double(expected["depth_tolerance_mm"]));
    }
    CHECK(found);
  }
  for (const std::string f : {"report.html", "brainsight_v14.txt", "markers.tsv", "protocol.json"})
    CHECK(std::filesystem::exists(out + "/plan/" + f));
  // Localite names its files InstrumentMarker<timestamp>.xml (docs/navigators.md).
  int localite = 0;
  for (const auto& e : std::filesystem::directory_iterator(out + "/plan")) {
    const std::string n = e.path().filename().string();
    if (n.rfind("InstrumentMarker", 0) == 0 && n.size() > 20 && n.substr(n.size() - 4) == ".xml") ++localite;
  }
  CHECK(localite == 1);
  // The plan's own efield step (BEM, --rmt 50): its DLPFC_BA46 dose, for the copy below.
  auto ba46_dose = [](const std::string& dir) {
    const auto te = nlohmann::json::parse(tmsplan::read_file(dir + "/targets_efield.json"));
    for (const auto& t : te["targets"])
      if (t["name"] == "DLPFC_BA46") return std::optional<double>(t["efield"]["dose"]["efield_pct_rmt"]);
    return std::optional<double>();
  };
  const std::optional<double> dose_sample = ba46_dose(out);
  // The E-field dose: the reference target gets 100 % RMT, each target's dose is the ratio of the
  // named ROI statistic, and the block gives both statistics' doses (docs/efield.md).
  for (const std::string objective : {"magnitude", "normal"}) {
    const auto e = testing::run(std::string(TMSPLAN_BIN_DIR) + "/efield -s " + out +
                                " --model sphere --rmt 50 --force --dose-objective " + objective);
    INFO(e.err);
    REQUIRE(e.exit_code == 0);
    const auto te = nlohmann::json::parse(tmsplan::read_file(out + "/targets_efield.json"));
    const std::string key = objective == "magnitude" ? "roi_mean_magnitude" : "roi_mean_abs_normal";
    const auto& ref = te["targets"][0]["efield"];
    REQUIRE(ref["dose"]["reference_target"] == "M1_hand_left");
    CHECK(ref["dose"]["efield_pct_rmt"] == 100.0);
    for (const auto& t : te["targets"]) {
      const auto& d = t["efield"]["dose"];
      CHECK(d["objective"] == key);
      CHECK(d["efield_pct_rmt"] == d["pct_rmt_by_objective"][key]);
      const double want =
          100.0 * double(ref["optimised"]["field"][key]) / double(t["efield"]["optimised"]["field"][key]);
      CHECK(double(d["efield_pct_rmt"]) == Approx(want).epsilon(0.005));  // the figures are rounded to 4 decimals
      CHECK(t["efield"]["normal_smoothing_mm"] == 2.0);
    }
  }
  // The same head moved, turned, re-gridded in LPS order and given other noise and bias
  // (small-2mm-lps): the default E-field dose (BEM) must not move with it. Measured on 2026-12-01:
  // DLPFC_BA46 87.0 / 86.3 % RMT by mean |E|; by mean |E.n|, the statistic that was the default
  // before, 225.8 / 173.5 % (docs/efield.md).
  const std::string copy_dir = testing::temp_dir("regression-small-2mm-lps");
  const auto rc = testing::run("TMSPLAN_BIN=" + std::string(TMSPLAN_BIN_DIR) + " " + std::string(TMSPLAN_SOURCE_DIR) +
                               "/scripts/plan-subject.sh " + samples + "/small-2mm-lps.nii.gz " + copy_dir +
                               " --threads 2 --rmt 50");
  INFO(rc.err);
  REQUIRE(rc.exit_code == 0);
  const std::optional<double> dose_copy = ba46_dose(copy_dir);
  REQUIRE(dose_sample);
  REQUIRE(dose_copy);
  INFO("DLPFC_BA46 dose " << *dose_sample << " / " << *dose_copy << " % RMT on the sample and its copy");
  CHECK(std::abs(*dose_sample - *dose_copy) <= 0.05 * *dose_sample);
}
