// Fills the report's sections from the plan: summary, protocol and safety, dose, one section per
// target (slices and scalp rendering), earlier QC pictures, plan files, provenance.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "internal.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/report.hpp"

namespace tmsplan::plan {

namespace fs = std::filesystem;
using json = nlohmann::json;
using report::Table;
using report::Tone;

namespace {

// Largest earlier-step file the report embeds or parses.
constexpr std::size_t kMaxEmbedBytes = 16u << 20;

std::string vec(const Eigen::Vector3d& v, int decimals = 1) {
  return fmt::format("({:.{}f}, {:.{}f}, {:.{}f})", v[0], decimals, v[1], decimals, v[2], decimals);
}

std::string opt_num(const std::optional<double>& v, const std::string& unit = "") {
  return v ? fmt::format("{:g}{}", *v, unit) : "not given";
}

std::string axis_codes(const Eigen::Matrix4d& vox2ras) {
  std::string out;
  for (int c = 0; c < 3; ++c) {
    const Eigen::Vector3d a = vox2ras.block<3, 1>(0, c);
    int k = 0;
    a.cwiseAbs().maxCoeff(&k);
    out += a[k] >= 0 ? "RAS"[k] : "LPI"[k];
  }
  return out;
}

std::string join_command(const json& cmd) {
  std::string out;
  if (!cmd.is_array()) return out;
  for (const auto& a : cmd) {
    const std::string s = a.is_string() ? a.get<std::string>() : a.dump();
    const bool quote = s.empty() || s.find_first_of(" \t'\"$") != std::string::npos;
    out += (out.empty() ? "" : " ") + (quote ? "'" + s + "'" : s);
  }
  return out;
}

report::Provenance provenance_from(const json& rec, const std::string& source) {
  report::Provenance p;
  p.tool = rec.value("tool", std::string("?"));
  p.version = rec.contains("version") && rec["version"].is_string() ? rec["version"].get<std::string>() : "";
  p.command_line = join_command(rec.value("command_line", json::array()));
  if (rec.contains("time") && rec["time"].is_object() && rec["time"].contains("finished_utc") &&
      rec["time"]["finished_utc"].is_string())
    p.finished = rec["time"]["finished_utc"].get<std::string>();
  p.source = source;
  p.inputs.header = {"input", "path", "sha256"};
  if (rec.contains("inputs") && rec["inputs"].is_object()) {
    for (const auto& [role, in] : rec["inputs"].items()) {
      if (!in.is_object()) continue;
      p.inputs.rows.push_back({role, in.value("path", std::string()), in.value("sha256", std::string())});
    }
  }
  if (rec.contains("reference_t1") && rec["reference_t1"].is_object())  // targets.json
    p.inputs.rows.push_back({"reference_t1", rec["reference_t1"].value("path", std::string()),
                             rec["reference_t1"].value("sha256", std::string())});
  return p;
}

std::string atlas_text(const json& atlas) {
  if (!atlas.is_object()) return {};
  std::string out;
  for (const auto& [name, v] : atlas.items()) {
    std::string label;
    if (v.is_object()) {
      if (v.contains("name") && v["name"].is_string()) label = v["name"].get<std::string>();
      if (v.contains("label")) label += (label.empty() ? "" : " ") + std::string("(label ") + v["label"].dump() + ")";
    } else {
      label = v.is_string() ? v.get<std::string>() : v.dump();
    }
    out += (out.empty() ? "" : "; ") + name + ": " + label;
  }
  return out;
}

// The head's bounding box in RAS: the slice panels are centred on it and cover it whole.
struct HeadBox {
  Eigen::Vector3d centre{0, 0, 0};
  double fov_mm = 240.0;
};

HeadBox head_box(const Mask& head) {
  HeadBox box;
  if (count(head) == 0) return box;
  const Crop c = bounding_crop(head, 0);
  Eigen::Vector3d lo = Eigen::Vector3d::Constant(1e30), hi = Eigen::Vector3d::Constant(-1e30);
  for (int k = 0; k < 8; ++k) {
    const auto& d = c.grid.dim;
    const Eigen::Vector3d p = c.grid.ras((k & 1) ? d[0] - 1 : 0, (k & 2) ? d[1] - 1 : 0, (k & 4) ? d[2] - 1 : 0).v;
    lo = lo.cwiseMin(p);
    hi = hi.cwiseMax(p);
  }
  box.centre = 0.5 * (lo + hi);
  // The largest extent plus a 10 mm margin on each side, in whole centimetres.
  box.fov_mm = std::clamp(std::ceil(((hi - lo).maxCoeff() + 20.0) / 10.0) * 10.0, 160.0, 320.0);
  return box;
}

report::TargetSection target_section(const Target& t, const TargetDose* dose, const protocol::Protocol& proto,
                                     const Image& t1, const std::array<double, 2>& window, const Mask& head,
                                     const HeadBox& box, const report::HeadSurface& surface,
                                     const report::HeadSurface* cortex, const std::string& efield_dir,
                                     std::vector<std::string>& warnings) {
  report::TargetSection sec;
  sec.name = t.name;
  const SourceEntry* src = source_for_target(t.source);
  sec.description = t.description + (src                ? " Source: " + src->citation + " (status in Sources)."
                                     : t.source.empty() ? ""
                                                        : " Source: " + t.source + ".");
  sec.guideline = guideline_at(proto, t);
  sec.coordinates.header = {"quantity", "subject RAS (mm)", "MNI (mm)"};
  auto& rows = sec.coordinates.rows;
  rows.push_back({"cortical target", vec(t.cortical_ras), t.mni ? vec(*t.mni) : "-"});
  if (t.prior_ras) rows.push_back({"prior (before snapping)", vec(*t.prior_ras), "-"});
  rows.push_back({"scalp entry", vec(t.scalp_ras), "-"});
  rows.push_back({"coil centre", vec(t.coil_centre_ras), "-"});
  rows.push_back({"scalp normal (outward)", vec(t.scalp_normal_ras, 3), "-"});
  rows.push_back(
      {"handle direction", vec(t.handle_direction_ras, 3) + " " + report::direction_name(t.handle_direction_ras), "-"});
  for (int c = 0; c < 3; ++c)
    rows.push_back({std::string("coil ") + "xyz"[c] + " axis", vec(t.coil_pose.m.block<3, 1>(0, c), 3), "-"});
  rows.push_back({"scalp-to-cortex distance", fmt::format("{:.1f} mm", t.scalp_to_cortex_mm), ""});
  if (!t.handle_rule.empty() || t.handle_angle_deg)
    rows.push_back(
        {"handle rule",
         t.handle_rule + (t.handle_angle_deg ? fmt::format(" ({:g} deg)", *t.handle_angle_deg) : std::string()), ""});
  if (const std::string a = atlas_text(t.atlas); !a.empty()) rows.push_back({"atlas labels", a, ""});
  if (dose) rows.push_back({"dose", dose->arithmetic, ""});
  sec.warnings = t.warnings;

  // Slices through the target, each panel centred on the head so that it shows the whole head.
  const double pixel = box.fov_mm / 320.0;
  QcFigure fig(t1, window, RasPoint(t.cortical_ras), RasPoint(box.centre), box.fov_mm, pixel);
  fig.add_outline(head, {80, 220, 120});
  fig.add_arrow(RasPoint(t.coil_centre_ras), RasVector(30.0 * t.handle_direction_ras), {255, 140, 0});
  fig.add_point(RasPoint(t.scalp_ras), {255, 230, 0}, 3);
  fig.add_point(RasPoint(t.coil_centre_ras), {255, 255, 255}, 2);
  fig.add_point(RasPoint(t.cortical_ras), {230, 20, 20}, 3);
  sec.pictures.push_back(
      {fmt::format("{}: slices through the cortical target", t.name),
       fmt::format("Axial, coronal and sagittal slices through the cortical target {}, each panel a {:g} mm square "
                   "centred on the head (neurological convention: subject's right on the right of the axial and "
                   "coronal panels, anterior on the right of the sagittal panel; white bar: 50 mm). Red: cortical "
                   "target; yellow: scalp entry; white: coil centre; orange arrow: handle direction (30 mm); points "
                   "are projected onto each slice. Green: head outline.",
                   vec(t.cortical_ras), box.fov_mm),
       report::figure_png(fig)});

  report::CoilDrawing coil;
  coil.pose = t.coil_pose;
  coil.handle_direction = t.handle_direction_ras;
  coil.scalp_point = t.scalp_ras;
  coil.cortical_point = t.cortical_ras;
  coil.view_normal = t.scalp_normal_ras;
  const report::ScalpRendering r = surface.render(coil);
  if (!r.hit_scalp) warnings.push_back(t.name + ": the scalp rendering did not meet the head (check the head mask)");
  sec.pictures.push_back(
      {fmt::format("{}: scalp and coil", t.name),
       "The head seen from outside along the scalp normal at the entry point, a 220 mm square (" + r.orientation +
           "). Blue: figure-8 coil (70 mm wings) at the coil centre; orange arrow: handle direction; yellow dot: "
           "scalp entry; red cross: cortical target below the skin; white bar: 50 mm.",
       encode_png(r.rgb, r.width, r.height)});

  if (cortex) {
    report::ScalpRenderOptions o;
    o.fov_mm = 180.0;  // the whole 176 mm coil footprint
    o.pixel_mm = 0.45;
    o.surface_rgb = {226, 178, 178};
    o.show_handle = false;
    o.show_entry = false;
    o.scale_bar_mm = 50.0;
    const report::ScalpRendering c = cortex->render(coil, o);
    if (!c.hit_scalp)
      warnings.push_back(t.name + ": the cortical rendering did not meet the cortex (check dseg.nii.gz)");
    sec.pictures.push_back(
        {fmt::format("{}: cortical surface under the coil", t.name),
         "The cortex's outer (pial) surface, grey plus white matter of dseg.nii.gz, seen along the same axis as the "
         "scalp view, a 180 mm square (" +
             c.orientation +
             "). Blue: the coil's footprint (its 70 mm wings projected along the view axis); red cross: cortical "
             "target; white dot: coil centre; white bar: 50 mm. Darker: deeper (sulci).",
         encode_png(c.rgb, c.width, c.height)});
  }
  // E-field section (lib/plan/report_efield.cpp)
  add_efield_section(t, efield_dir, sec);
  return sec;
}

// Earlier steps' records in the subject folder (path, record), sorted by path; the finish time
// of target-pick's goes to targets_date.
std::vector<std::pair<std::string, json>> earlier_records(const PlanSummary& s, std::string& targets_date,
                                                          std::vector<std::string>& warnings) {
  std::vector<std::pair<std::string, json>> records;
  std::error_code ec;
  std::vector<fs::path> jsons;
  for (const auto& e : fs::directory_iterator(s.subject_dir, ec))
    if (e.is_regular_file(ec) && e.path().extension() == ".json") jsons.push_back(e.path());
  std::sort(jsons.begin(), jsons.end());
  for (const auto& p : jsons) {
    try {
      if (fs::file_size(p) > kMaxEmbedBytes) continue;
      const json rec = json::parse(read_file(p.string()));
      if (!rec.is_object() || !rec.contains("tool") || !rec["tool"].is_string()) continue;
      records.emplace_back(p.string(), rec);
      if (rec["tool"] == "target-pick" && rec.contains("time") && rec["time"].is_object())
        targets_date = rec["time"].value("finished_utc", std::string());
    } catch (const std::exception& e) {
      warnings.push_back(fmt::format("{}: not read for the report ({})", p.string(), e.what()));
    }
  }
  return records;
}

void fill_summary(const PlanSummary& s, const Image& t1, const std::string& targets_date, report::ReportData& d) {
  const auto& g = t1.grid;
  const Eigen::Vector3d sp = g.spacing_mm();
  auto& sum = d.summary.rows;
  sum.push_back({"T1", fs::absolute(s.params.t1_path).string()});
  sum.push_back(
      {"T1 sha256", s.t1_sha + (s.t1_sha_matches ? " (matches targets.json)" : " (DIFFERS from targets.json)")});
  sum.push_back({"T1 grid", fmt::format("{} x {} x {} voxels of {:.3g} x {:.3g} x {:.3g} mm, axes {} (voxel order)",
                                        g.dim[0], g.dim[1], g.dim[2], sp[0], sp[1], sp[2], axis_codes(g.vox2ras.m))});
  sum.push_back({"targets", fs::absolute(s.params.targets_path).string()});
  sum.push_back({"targets written by",
                 s.all.tool + " " + s.all.version + (targets_date.empty() ? "" : ", finished " + targets_date)});
  sum.push_back(
      {"head mask", s.head_path.empty() ? "none (rendering from a T1 threshold)" : fs::absolute(s.head_path).string()});
  sum.push_back({"subject folder", fs::absolute(s.subject_dir).string()});
  sum.push_back({"resting motor threshold",
                 s.params.rmt_pct_mso ? fmt::format("{:g} %MSO", *s.params.rmt_pct_mso) : "not given (--rmt)"});
  sum.push_back({"plan generated", s.generated_utc});
}

// What the clinician must still check: one box, each item once (then the run's warnings).
void fill_checks(const PlanSummary& s, const std::vector<std::string>& warnings, report::ReportData& d) {
  const auto& p = s.proto;
  if (!s.table.checked_against_primary)
    d.checks.push_back("Safety table: no value of the maximum-train-duration table (Rossi et al. 2009, Table 4, after "
                       "Wassermann 1998) has been checked against the printed table; check the row this protocol uses "
                       "before relying on its verdict.");
  for (const auto& [field, note] : p.verify) {
    const bool intensity = field == "intensity_pct_rmt" || field == "intensity_pct_rmt_max";
    if (!intensity && note.find("unconfirmed") == std::string::npos) continue;
    std::string value;
    if (field == "intensity_pct_rmt")
      value = p.intensity_pct_rmt ? fmt::format("{:g}% RMT", *p.intensity_pct_rmt) : "not set";
    else if (field == "train_duration_s")
      value = p.train_duration_s ? fmt::format("{:g} s", *p.train_duration_s) : "not set";
    else if (field == "trains")
      value = p.trains ? std::to_string(*p.trains) : "not set";
    else if (field == "inter_train_interval_s")
      value = p.inter_train_interval_s ? fmt::format("{:g} s", *p.inter_train_interval_s) : "not set";
    d.checks.push_back(fmt::format("Protocol {}, {}{}: {}", p.id, field == "intensity_pct_rmt" ? "intensity" : field,
                                   value.empty() ? "" : " (" + value + ")", note));
  }
  bool motor_prior = false;
  for (const Target* t : s.selected) {
    const SourceEntry* src = source_for_target(t->source);
    if (src && src->key == "mayka2006" && !motor_prior) {
      motor_prior = true;
      d.checks.push_back("M1 coordinate: the MNI prior (-37, -21, 58) is approximate; Mayka et al. 2006 pooled "
                         "Talairach coordinates, so whether it is MNI or Talairach (a few mm apart) is unconfirmed. "
                         "The target was refined on the hand knob: confirm the hotspot on the patient.");
    } else if (src && src->key != "mayka2006") {
      d.checks.push_back(
          fmt::format("Target {}{}: {}.", t->name, t->mni ? " " + vec(*t->mni, 0) : std::string(), src->status));
    }
  }
  for (const auto& w : warnings) d.checks.push_back(w);
}

// Protocol and safety.
void fill_protocol(const PlanSummary& s, report::ReportData& d) {
  const auto& p = s.proto;
  auto& pr = d.protocol.rows;
  pr.push_back({"protocol", p.id + (p.name.empty() ? "" : ": " + p.name)});
  pr.push_back({"evidence level",
                p.evidence_level.empty()
                    ? "not stated"
                    : p.evidence_level + (p.evidence_level == "trial" ? " (a single trial)"
                                                                      : " (Lefaucheur et al. 2020 guideline level)")});
  pr.push_back({"citation", p.citation.empty() ? "none given" : p.citation + " (status in Sources)"});
  pr.push_back({"studied target", p.target});
  pr.push_back({"frequency", fmt::format("{:g} Hz", p.frequency_hz)});
  pr.push_back({"intensity", opt_num(p.intensity_pct_rmt, "% RMT") +
                                 (p.intensity_pct_rmt_max ? " to " + opt_num(p.intensity_pct_rmt_max, "% RMT") : "")});
  const auto ppt = protocol::pulses_per_train(p);
  pr.push_back({"train", opt_num(p.train_duration_s, " s") + ", " +
                             (ppt ? fmt::format("{} pulses", *ppt) : std::string("pulses not given"))});
  pr.push_back({"inter-train interval", opt_num(p.inter_train_interval_s, " s")});
  pr.push_back({"trains per session", p.trains ? std::to_string(*p.trains) : "not given"});
  pr.push_back(
      {"pulses per session", std::to_string(p.pulses_per_session) +
                                 (p.pulses_per_session_max ? " to " + std::to_string(*p.pulses_per_session_max) : "")});
  pr.push_back({"sessions", std::to_string(p.sessions) + (p.schedule.empty() ? "" : "; " + p.schedule)});
  if (!p.use.empty()) pr.push_back({"use", p.use});
  std::string borrowed;  // notes on values taken from another source (the unconfirmed ones are in the box)
  for (const auto& [field, why] : p.verify)
    if (field != "intensity_pct_rmt" && field != "intensity_pct_rmt_max" &&
        why.find("unconfirmed") == std::string::npos)
      borrowed += (borrowed.empty() ? "" : " ") + field + ": " + why;
  if (!borrowed.empty()) pr.push_back({"where the values come from", borrowed});
  pr.push_back({"complete", protocol::is_complete(p) ? "yes" : "no: train structure missing"});
}

void fill_safety(const PlanSummary& s, report::ReportData& d) {
  const auto tone_of = [](protocol::Verdict v) {
    return v == protocol::Verdict::exceeds ? Tone::bad : v == protocol::Verdict::unknown ? Tone::warn : Tone::ok;
  };
  const auto badge_of = [](protocol::Verdict v, const char* bad) {
    return v == protocol::Verdict::ok ? std::string("PASSES") : v == protocol::Verdict::exceeds ? bad : "UNKNOWN";
  };
  d.safety.push_back({"single-train duration", badge_of(s.safety.train_verdict, "EXCEEDS LIMIT"), s.safety.message,
                      tone_of(s.safety.train_verdict)});
  d.safety.push_back({"inter-train interval", badge_of(s.safety.interval_verdict, "BREAKS RULE"),
                      s.safety.interval_message, tone_of(s.safety.interval_verdict)});
  d.safety_notes.push_back("Duration table: " + s.table.source);
  d.safety_notes.push_back(s.table.duration_version_note.empty()
                               ? "Durations: the table's " +
                                     std::string(s.table.duration_version == "original"
                                                     ? "original values (not reduced)"
                                                     : "values reduced by 25% (after Chen et al. 1997)") +
                                     "."
                               : s.table.duration_version_note);
  if (s.table.interval)
    d.safety_notes.push_back("Interval rule (" + s.table.interval->source + "): " + s.table.interval->rule);
  d.safety_notes.push_back("The same train at every target: intensity is taken as % of the motor threshold at the "
                           "stimulated site (after the depth adjustment). Healthy-subject limits; --strict refuses a "
                           "protocol that breaks either rule or cannot be checked.");
}

void fill_dose(const PlanSummary& s, report::ReportData& d) {
  d.dose.header = {"target",    "d_target (mm)",    "d_M1 (mm)", "k x (d_target - d_M1)",
                   "MT (%MSO)", "intensity (%MSO)", "arithmetic"};
  bool adjustable = true;
  for (const auto& x : s.doses) {
    adjustable = adjustable && x.adjustable;
    d.dose.rows.push_back(
        {x.target, fmt::format("{:.2f}", x.d_target_mm), x.d_m1_mm ? fmt::format("{:.2f}", *x.d_m1_mm) : "-",
         x.offset_pct_mso ? fmt::format("{:+.1f} %MSO", *x.offset_pct_mso) : "-",
         x.mt_target_pct_mso ? fmt::format("{:.1f}", *x.mt_target_pct_mso) : "-",
         x.intensity_pct_mso ? fmt::format("{:.1f}", *x.intensity_pct_mso) +
                                   (x.intensity_max_pct_mso ? fmt::format(" to {:.1f}", *x.intensity_max_pct_mso) : "")
                             : "-",
         x.arithmetic});
    if (x.exceeds_stimulator)
      d.dose_verdicts.push_back({x.target, "NOT ACHIEVABLE", "the dose is above 100 %MSO", Tone::bad});
  }
  if (!adjustable)
    d.dose_verdicts.push_back({"depth adjustment", "NOT POSSIBLE",
                               "targets.json has no M1 target, so the scalp-to-cortex distance at M1 is unknown; "
                               "the intensity cannot be adjusted for the target's depth",
                               Tone::warn});
  if (!s.params.rmt_pct_mso)
    d.dose_verdicts.push_back({"resting motor threshold", "NOT GIVEN",
                               "intensities stay in % RMT; measure the RMT at M1 and run again with --rmt",
                               Tone::neutral});
  d.dose_notes.push_back(fmt::format("MT_target = RMT + k x (d_target - d_M1), k = {:g} %MSO per mm. {}",
                                     kDoseFactorPctMsoPerMm, kDoseFactorCitation));
  d.dose_notes.push_back("Distances are scalp to cortex, measured on this subject's MRI by target-pick; intensity = "
                         "protocol % RMT x MT_target / 100.");
}

// The surface rendered for the cortical view: grey plus white matter of SUBJECT_DIR/dseg.nii.gz
// (null, with a warning, when there is none or it does not fit the T1).
std::unique_ptr<report::HeadSurface> cortex_surface(const PlanSummary& s, const Grid& t1_grid,
                                                    std::vector<std::string>& warnings) {
  std::error_code ec;
  const fs::path dseg_path = fs::path(s.subject_dir) / "dseg.nii.gz";
  if (!fs::is_regular_file(dseg_path, ec)) {
    warnings.push_back("no dseg.nii.gz in the subject folder: the report has no cortical view");
    return nullptr;
  }
  try {
    ReadOptions ro;
    ro.refuse_constant = false;
    const Image dseg = read_image(dseg_path.string(), ro);
    if (!dseg.grid.same_as(t1_grid, 1e-3)) throw Error("not on the T1's grid", dseg_path.string());
    Mask brain(t1_grid, 0);
    for (std::size_t i = 0; i < brain.data.size(); ++i)
      brain.data[i] = dseg.data[i] > 1.5f ? 1 : 0;  // grey (2) and white (3) matter
    return std::make_unique<report::HeadSurface>(brain);
  } catch (const std::exception& e) {
    warnings.push_back(fmt::format("{}: no cortical view ({})", dseg_path.string(), e.what()));
  }
  return nullptr;
}

// One section per target: slices, the scalp and (with dseg.nii.gz) the cortex rendered. The two
// surfaces are built side by side, then the targets' sections (each independent; their warnings
// are kept per target and joined in target order, as a serial run would give them).
void fill_targets(const PlanSummary& s, const Image& t1, const Mask& head, std::vector<std::string>& warnings,
                  report::ReportData& d) {
  log::info("rendering the scalp and the cortex");
  std::unique_ptr<report::HeadSurface> surface, cortex;
  std::vector<std::string> cortex_warnings;
  parallel_tasks({[&] { surface = std::make_unique<report::HeadSurface>(head); },
                  [&] { cortex = cortex_surface(s, t1.grid, cortex_warnings); }});
  warnings.insert(warnings.end(), cortex_warnings.begin(), cortex_warnings.end());
  const HeadBox box = head_box(head);
  const std::array<double, 2> window = QcFigure::display_window(t1);  // one grey window for every target
  const std::string efield_dir = std::filesystem::path(s.params.targets_path).parent_path().string();
  std::vector<report::TargetSection> sections(s.selected.size());
  std::vector<std::vector<std::string>> section_warnings(s.selected.size());
  std::vector<std::function<void()>> tasks;
  for (std::size_t n = 0; n < s.selected.size(); ++n)
    tasks.push_back([&, n] {
      const Target* t = s.selected[n];
      const TargetDose* dose = nullptr;
      for (const auto& x : s.doses)
        if (x.target == t->name) dose = &x;
      sections[n] = target_section(*t, dose, s.proto, t1, window, head, box, *surface, cortex.get(), efield_dir,
                                   section_warnings[n]);
    });
  parallel_tasks(tasks);
  for (std::size_t n = 0; n < sections.size(); ++n) {
    d.targets.push_back(std::move(sections[n]));
    warnings.insert(warnings.end(), section_warnings[n].begin(), section_warnings[n].end());
  }
}

// Earlier QC pictures.
void fill_earlier_qc(const PlanSummary& s, std::vector<std::string>& warnings, report::ReportData& d) {
  std::error_code ec;
  // What each step draws (its QcFigure): whole panels of the stated field, white gaps between them.
  const std::vector<std::array<std::string, 3>> qc = {
      {"skull_strip_qc.png", "skull-strip",
       "Axial, coronal and sagittal slices through the brain's centre, 240 mm "
       "fields; white bar: 50 mm."},
      {"segment_qc.png", "segment",
       "Axial, coronal and sagittal slices through the brain mask's centre, 240 mm "
       "fields; white bar: 50 mm."},
      {"cortex_map_qc.png", "cortex-map",
       "Slices through the M1 hand point, 160 mm fields (a close-up): BA4 red, BA6 "
       "yellow, BA1-3 cyan, grey matter's outer edge white; white bar: 50 mm."},
      {"target_pick_qc.png", "target-pick",
       "One row per target: slices through its cortical point, 120 mm fields (a "
       "close-up); white bar: 50 mm."}};
  for (const auto& [file, step, what] : qc) {
    const fs::path path = fs::path(s.subject_dir) / file;
    if (!fs::is_regular_file(path, ec)) continue;
    std::string bytes = read_file(path.string(), kMaxEmbedBytes);
    if (bytes.size() < 8 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) {
      warnings.push_back(path.string() + ": not a PNG, left out of the report");
      d.checks.push_back(warnings.back());
      continue;
    }
    d.earlier_qc.push_back({step + " QC", what + " From " + path.string() + ".", std::move(bytes)});
  }
}

// Plan files.
void fill_files(const PlanSummary& s, report::ReportData& d) {
  d.files.header = {"file", "content", "sha256"};
  const std::map<std::string, std::string> what = {
      {s.localite_instrument_markers, std::string("Localite TMS Navigator InstrumentMarkerList (coil poses, ") +
                                          (s.params.localite_lps ? "LPS" : "RAS") +
                                          "); named as Localite names it, the timestamp derived from the plan"},
      {s.localite_entry_targets, "Localite EntryTargetList (scalp entry and cortical target points)"},
      {"brainsight_v12.txt", "Brainsight targets, version 12, NIfTI:Aligned"},
      {"brainsight_v14.txt", "Brainsight targets, version 14, NIfTI:Q:Aligned"},
      {"ant_markers.mrk", "ANT visor2 markers (JSON, SimNIBS coil axes)"},
      {"markers.tsv", "targets, entries and coil poses (plain TSV)"},
      {"tms.tsv", "protocol per target (plain TSV)"},
      {"protocol.json", "protocol, safety verdicts, dose arithmetic, citations"},
      {"t1w_navigator.nii.gz", "the T1 with qform = sform, to load in the navigator"}};
  for (const auto& name : s.file_names) {
    const auto it = s.file_sha.find(name);
    if (it != s.file_sha.end()) d.files.rows.push_back({name, what.count(name) ? what.at(name) : "", it->second});
  }
  d.files.rows.push_back({"report.html", "this page", "-"});
  d.files.rows.push_back({"protocol_export.json", "provenance record of this run", "-"});
}

// Sources: every citation behind the plan, each once, with its checked status.
void fill_sources(const PlanSummary& s, report::ReportData& d) {
  const auto& p = s.proto;
  d.sources.header = {"citation", "used for", "status"};
  const auto cite = [&](const std::string& citation, const std::string& used_for, const std::string& status) {
    for (const auto& row : d.sources.rows)
      if (row[0] == citation) return;
    d.sources.rows.push_back({citation, used_for, status});
  };
  if (!p.citation.empty())
    cite(p.citation, "protocol " + p.id, p.citation_status.empty() ? "not stated in the protocol" : p.citation_status);
  cite(source("lefaucheur2020").citation, source("lefaucheur2020").used_for, source("lefaucheur2020").status);
  cite(s.table.source, "safety: longest safe single train (" + s.table.duration_version + " durations)",
       s.table.checked_against_primary ? "verified, including the table's values"
                                       : "citation verified; the table's values unconfirmed (see the box above)");
  if (s.table.interval)
    cite(s.table.interval->source, "safety: inter-train interval rule",
         s.table.interval->checked ? source("chen1997").status : "unconfirmed");
  cite(source("rossi2021").citation, source("rossi2021").used_for, source("rossi2021").status);
  for (const char* key : {"stokes2005", "stokes2007"})
    cite(source(key).citation, source(key).used_for, source(key).status);
  bool motor = false;
  for (const Target* t : s.selected) {
    if (const SourceEntry* e = source_for_target(t->source))
      cite(e->citation, e->used_for, e->status);
    else if (!t->source.empty())
      cite(t->source, "target " + t->name, "as given in targets.json; status unknown");
    motor = motor || is_motor_target(*t);
  }
  if (motor)
    cite(source("andreobadia2008").citation, source("andreobadia2008").used_for, source("andreobadia2008").status);
  d.sources_notes.push_back(
      "Checked 2026-11-30 against indexing records (PubMed, publisher and university pages), abstracts, review "
      "tables and other groups' public code. Verified: the value is in the paper's abstract or indexing record, or in "
      "a review table quoting it. Corrected: the citation used before was wrong. Unconfirmed: no accessible source "
      "confirms it; a clinician must check it against the paper before relying on it.");
}

void fill_provenance(const PlanSummary& s, const json& record, const std::vector<std::pair<std::string, json>>& records,
                     report::ReportData& d) {
  std::error_code ec;
  d.provenance.push_back(provenance_from(record, "this run (plan/protocol_export.json)"));
  d.provenance.back().finished = s.generated_utc;
  bool targets_listed = false;
  for (const auto& [path, rec] : records) {
    d.provenance.push_back(provenance_from(rec, path));
    targets_listed = targets_listed || fs::equivalent(path, s.params.targets_path, ec);
  }
  if (!targets_listed) {
    json t = {{"tool", s.all.tool}, {"version", s.all.version}, {"command_line", s.all.command_line}};
    t["reference_t1"] = {{"path", s.all.reference_t1.path}, {"sha256", s.all.reference_t1.sha256}};
    d.provenance.push_back(provenance_from(t, s.params.targets_path));
  }
}

}  // namespace

std::string build_report(const PlanSummary& s, const Image& t1, const Mask& head, const json& record,
                         std::vector<std::string>& warnings) {
  report::ReportData d;
  d.title = "TMS treatment plan: " +
            (s.selected.size() == 1 ? s.selected.front()->name : fmt::format("{} targets", s.selected.size()));
  d.generated_utc = s.generated_utc;
  d.coordinate_convention = coordinate_convention(s.params.localite_lps);
  std::string targets_date;
  const auto records = earlier_records(s, targets_date, warnings);
  fill_summary(s, t1, targets_date, d);
  fill_checks(s, warnings, d);
  d.warnings.clear();
  const std::size_t known_warnings = warnings.size();  // rendering adds more below
  fill_protocol(s, d);
  fill_safety(s, d);
  fill_dose(s, d);
  fill_targets(s, t1, head, warnings, d);
  for (std::size_t i = known_warnings; i < warnings.size(); ++i) d.checks.push_back(warnings[i]);
  fill_earlier_qc(s, warnings, d);
  fill_files(s, d);
  fill_sources(s, d);
  fill_provenance(s, record, records, d);
  return report::render_html(d);
}

}  // namespace tmsplan::plan
