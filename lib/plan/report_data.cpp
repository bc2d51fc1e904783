// Fills the report's sections from the plan: summary, protocol and safety, dose, one section per
// target (slices and scalp rendering), earlier QC pictures, plan files, provenance.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "internal.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/log.hpp"
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

std::string vec(const Eigen::Vector3d &v, int decimals = 1) {
  return fmt::format("({:.{}f}, {:.{}f}, {:.{}f})", v[0], decimals, v[1], decimals, v[2], decimals);
}

std::string opt_num(const std::optional<double> &v, const std::string &unit = "") {
  return v ? fmt::format("{:g}{}", *v, unit) : "not given";
}

std::string axis_codes(const Eigen::Matrix4d &vox2ras) {
  std::string out;
  for (int c = 0; c < 3; ++c) {
    const Eigen::Vector3d a = vox2ras.block<3, 1>(0, c);
    int k = 0;
    a.cwiseAbs().maxCoeff(&k);
    out += a[k] >= 0 ? "RAS"[k] : "LPI"[k];
  }
  return out;
}

std::string join_command(const json &cmd) {
  std::string out;
  if (!cmd.is_array())
    return out;
  for (const auto &a : cmd) {
    const std::string s = a.is_string() ? a.get<std::string>() : a.dump();
    const bool quote = s.empty() || s.find_first_of(" \t'\"$") != std::string::npos;
    out += (out.empty() ? "" : " ") + (quote ? "'" + s + "'" : s);
  }
  return out;
}

report::Provenance provenance_from(const json &rec, const std::string &source) {
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
    for (const auto &[role, in] : rec["inputs"].items()) {
      if (!in.is_object())
        continue;
      p.inputs.rows.push_back({role, in.value("path", std::string()), in.value("sha256", std::string())});
    }
  }
  if (rec.contains("reference_t1") && rec["reference_t1"].is_object()) // targets.json
    p.inputs.rows.push_back({"reference_t1", rec["reference_t1"].value("path", std::string()),
                             rec["reference_t1"].value("sha256", std::string())});
  return p;
}

std::string atlas_text(const json &atlas) {
  if (!atlas.is_object())
    return {};
  std::string out;
  for (const auto &[name, v] : atlas.items()) {
    std::string label;
    if (v.is_object()) {
      if (v.contains("name") && v["name"].is_string())
        label = v["name"].get<std::string>();
      if (v.contains("label"))
        label += (label.empty() ? "" : " ") + std::string("(label ") + v["label"].dump() + ")";
    } else {
      label = v.is_string() ? v.get<std::string>() : v.dump();
    }
    out += (out.empty() ? "" : "; ") + name + ": " + label;
  }
  return out;
}

report::TargetSection target_section(const Target &t, const TargetDose *dose, const Image &t1, const Mask &head,
                                     const report::HeadSurface &surface, std::vector<std::string> &warnings) {
  report::TargetSection sec;
  sec.name = t.name;
  sec.description = t.description + (t.source.empty() ? "" : " Source: " + t.source + ".");
  sec.coordinates.header = {"quantity", "subject RAS (mm)", "MNI (mm)"};
  auto &rows = sec.coordinates.rows;
  rows.push_back({"cortical target", vec(t.cortical_ras), t.mni ? vec(*t.mni) : "-"});
  if (t.prior_ras)
    rows.push_back({"prior (before snapping)", vec(*t.prior_ras), "-"});
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
  if (const std::string a = atlas_text(t.atlas); !a.empty())
    rows.push_back({"atlas labels", a, ""});
  if (dose)
    rows.push_back({"dose", dose->arithmetic, ""});
  sec.warnings = t.warnings;

  QcFigure fig(t1, RasPoint(t.cortical_ras), 240.0, 0.75);
  fig.add_outline(head, {80, 220, 120});
  fig.add_arrow(RasPoint(t.coil_centre_ras), RasVector(30.0 * t.handle_direction_ras), {255, 140, 0});
  fig.add_point(RasPoint(t.scalp_ras), {255, 230, 0}, 3);
  fig.add_point(RasPoint(t.coil_centre_ras), {255, 255, 255}, 2);
  fig.add_point(RasPoint(t.cortical_ras), {230, 20, 20}, 3);
  sec.pictures.push_back(
      {fmt::format("{}: slices through the cortical target", t.name),
       "Axial, coronal and sagittal slices through the cortical target " + vec(t.cortical_ras) +
           " (240 mm fields; neurological convention: subject's right on the right of the axial and coronal panels, "
           "anterior on the right of the sagittal panel). Red: cortical target; yellow: scalp entry; white: coil "
           "centre; orange arrow: handle direction (30 mm); points are projected onto each slice. Green: head outline.",
       report::figure_png(fig)});

  report::CoilDrawing coil;
  coil.pose = t.coil_pose;
  coil.handle_direction = t.handle_direction_ras;
  coil.scalp_point = t.scalp_ras;
  coil.cortical_point = t.cortical_ras;
  coil.view_normal = t.scalp_normal_ras;
  const report::ScalpRendering r = surface.render(coil);
  if (!r.hit_scalp)
    warnings.push_back(t.name + ": the scalp rendering did not meet the head (check the head mask)");
  sec.pictures.push_back(
      {fmt::format("{}: scalp and coil", t.name),
       "The head seen from outside along the scalp normal at the entry point (" + r.orientation +
           "). Blue: figure-8 coil (70 mm wings) at the coil centre; orange arrow: handle direction; yellow dot: "
           "scalp entry; red cross: cortical target below the skin; white bar: 50 mm.",
       encode_png(r.rgb, r.width, r.height)});
  return sec;
}

} // namespace

std::string build_report(const PlanSummary &s, const Image &t1, const Mask &head, const json &record,
                         std::vector<std::string> &warnings) {
  report::ReportData d;
  d.title = "TMS treatment plan: " +
            (s.selected.size() == 1 ? s.selected.front()->name : fmt::format("{} targets", s.selected.size()));
  d.generated_utc = s.generated_utc;
  d.coordinate_convention = coordinate_convention(s.params.localite_lps);

  // Earlier steps: records and QC pictures in the subject folder.
  std::vector<std::pair<std::string, json>> records;
  std::string targets_date;
  std::error_code ec;
  std::vector<fs::path> jsons;
  for (const auto &e : fs::directory_iterator(s.subject_dir, ec))
    if (e.is_regular_file(ec) && e.path().extension() == ".json")
      jsons.push_back(e.path());
  std::sort(jsons.begin(), jsons.end());
  for (const auto &p : jsons) {
    try {
      if (fs::file_size(p) > kMaxEmbedBytes)
        continue;
      const json rec = json::parse(read_file(p.string()));
      if (!rec.is_object() || !rec.contains("tool") || !rec["tool"].is_string())
        continue;
      records.emplace_back(p.string(), rec);
      if (rec["tool"] == "target-pick" && rec.contains("time") && rec["time"].is_object())
        targets_date = rec["time"].value("finished_utc", std::string());
    } catch (const std::exception &e) {
      warnings.push_back(fmt::format("{}: not read for the report ({})", p.string(), e.what()));
    }
  }

  const auto &g = t1.grid;
  const Eigen::Vector3d sp = g.spacing_mm();
  auto &sum = d.summary.rows;
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
  d.warnings = warnings; // the ones known before rendering; rendering adds more below

  // Protocol and safety.
  const auto &p = s.proto;
  auto &pr = d.protocol.rows;
  pr.push_back({"protocol", p.id + (p.name.empty() ? "" : ": " + p.name)});
  pr.push_back({"evidence level",
                p.evidence_level.empty()
                    ? "not stated"
                    : p.evidence_level + (p.evidence_level == "trial" ? " (a single trial)"
                                                                      : " (Lefaucheur et al. 2020 guideline level)")});
  pr.push_back({"citation", p.citation.empty() ? "none given" : p.citation});
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
  if (!p.use.empty())
    pr.push_back({"use", p.use});
  for (const auto &[field, why] : p.verify)
    pr.push_back({"unverified: " + field, why});
  pr.push_back({"complete", protocol::is_complete(p) ? "yes" : "no: train structure missing"});

  const Tone safety_tone = s.safety.verdict == protocol::Verdict::exceeds   ? Tone::bad
                           : s.safety.verdict == protocol::Verdict::unknown ? Tone::warn
                                                                            : Tone::ok;
  const std::string badge = s.safety.verdict == protocol::Verdict::ok        ? "PASSES"
                            : s.safety.verdict == protocol::Verdict::exceeds ? "EXCEEDS LIMIT"
                                                                             : "UNKNOWN";
  for (const Target *t : s.selected)
    d.safety.push_back({t->name, badge, s.safety.message, safety_tone});
  d.safety_notes.push_back("Table: " + s.table.source);
  if (!s.table.checked_against_primary)
    d.safety_notes.push_back("The table's values have not been checked against the printed primary table.");
  d.safety_notes.push_back("Intensity is taken as % of the motor threshold at the stimulated site (after the depth "
                           "adjustment); inter-train intervals are not checked. Healthy-subject limits.");

  // Dose.
  d.dose.header = {"target",    "d_target (mm)",    "d_M1 (mm)", "k x (d_target - d_M1)",
                   "MT (%MSO)", "intensity (%MSO)", "arithmetic"};
  bool adjustable = true;
  for (const auto &x : s.doses) {
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

  // Targets.
  log::info("rendering the scalp");
  const report::HeadSurface surface(head);
  for (const Target *t : s.selected) {
    const TargetDose *dose = nullptr;
    for (const auto &x : s.doses)
      if (x.target == t->name)
        dose = &x;
    d.targets.push_back(target_section(*t, dose, t1, head, surface, warnings));
  }
  for (std::size_t i = d.warnings.size(); i < warnings.size(); ++i)
    d.warnings.push_back(warnings[i]);

  // Earlier QC pictures.
  const std::vector<std::pair<std::string, std::string>> qc = {{"skull_strip_qc.png", "skull-strip"},
                                                               {"segment_qc.png", "segment"},
                                                               {"cortex_map_qc.png", "cortex-map"},
                                                               {"target_pick_qc.png", "target-pick"}};
  for (const auto &[file, step] : qc) {
    const fs::path path = fs::path(s.subject_dir) / file;
    if (!fs::is_regular_file(path, ec))
      continue;
    std::string bytes = read_file(path.string(), kMaxEmbedBytes);
    if (bytes.size() < 8 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) {
      warnings.push_back(path.string() + ": not a PNG, left out of the report");
      d.warnings.push_back(warnings.back());
      continue;
    }
    d.earlier_qc.push_back({step + " QC", "From " + path.string() + ".", std::move(bytes)});
  }

  // Plan files and provenance.
  d.files.header = {"file", "content", "sha256"};
  const std::map<std::string, std::string> what = {
      {"localite_instrument_markers.xml", std::string("Localite TMS Navigator InstrumentMarkerList (coil poses, ") +
                                              (s.params.localite_lps ? "LPS" : "RAS") + ")"},
      {"localite_entry_target.xml", "Localite EntryTargetList (scalp entry and cortical target points)"},
      {"brainsight_v12.txt", "Brainsight targets, version 12, NIfTI:Aligned"},
      {"brainsight_v14.txt", "Brainsight targets, version 14, NIfTI:Q:Aligned"},
      {"ant_markers.mrk", "ANT visor2 markers (JSON, SimNIBS coil axes)"},
      {"markers.tsv", "targets, entries and coil poses (plain TSV)"},
      {"tms.tsv", "protocol per target (plain TSV)"},
      {"protocol.json", "protocol, safety verdicts, dose arithmetic, citations"},
      {"t1w_navigator.nii.gz", "the T1 with qform = sform, to load in the navigator"}};
  for (const auto &name : output_names()) {
    const auto it = s.file_sha.find(name);
    if (it != s.file_sha.end())
      d.files.rows.push_back({name, what.count(name) ? what.at(name) : "", it->second});
  }
  d.files.rows.push_back({"report.html", "this page", "-"});
  d.files.rows.push_back({"protocol_export.json", "provenance record of this run", "-"});

  d.provenance.push_back(provenance_from(record, "this run (plan/protocol_export.json)"));
  d.provenance.back().finished = s.generated_utc;
  bool targets_listed = false;
  for (const auto &[path, rec] : records) {
    d.provenance.push_back(provenance_from(rec, path));
    targets_listed = targets_listed || fs::equivalent(path, s.params.targets_path, ec);
  }
  if (!targets_listed) {
    json t = {{"tool", s.all.tool}, {"version", s.all.version}, {"command_line", s.all.command_line}};
    t["reference_t1"] = {{"path", s.all.reference_t1.path}, {"sha256", s.all.reference_t1.sha256}};
    d.provenance.push_back(provenance_from(t, s.params.targets_path));
  }
  return report::render_html(d);
}

} // namespace tmsplan::plan
