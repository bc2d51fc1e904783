// The E-field part of a target's report section: what the efield step found at the target.
#include <fmt/format.h>

#include <filesystem>

#include "internal.hpp"
#include "tmsplan/files.hpp"

namespace tmsplan::plan {

namespace {

std::string num(const nlohmann::json& j, const char* key, const char* format = "{:.3f}") {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return "-";
  return fmt::format(fmt::runtime(format), j[key].get<double>());
}

}  // namespace

void add_efield_section(const Target& t, const std::string& dir, report::TargetSection& sec) {
  const nlohmann::json& e = t.efield;
  if (!e.is_object() || !e.contains("rule") || !e.contains("optimised")) return;
  const std::string model = e.value("model", "?");
  const std::string other = e.value("other_model", "sphere");
  const nlohmann::json &rule = e["rule"], &opt = e["optimised"];
  auto fig = [](const nlohmann::json& pose, const char* which) -> const nlohmann::json& {
    static const nlohmann::json empty = nlohmann::json::object();
    return pose.contains(which) && pose[which].is_object() ? pose[which] : empty;
  };
  report::Table& tab = sec.efield;
  tab.header = {"quantity (V/m per A/us)", "rule's pose, " + model, "optimised pose, " + model,
                "optimised pose, " + other};
  const auto &rf = fig(rule, "field"), &of = fig(opt, "field"), &oo = fig(opt, "field_other_model");
  tab.rows.push_back({"handle angle (deg from posterior toward lateral)", num(rule, "handle_angle_deg", "{:.0f}"),
                      num(opt, "handle_angle_deg", "{:.0f}"), num(opt, "handle_angle_deg", "{:.0f}")});
  tab.rows.push_back(
      {"coil centre moved (mm)", "0", num(opt, "centre_shift_mm", "{:.1f}"), num(opt, "centre_shift_mm", "{:.1f}")});
  tab.rows.push_back(
      {"|E| at the target", num(rf, "target_magnitude"), num(of, "target_magnitude"), num(oo, "target_magnitude")});
  tab.rows.push_back({"E.n at the target (inward normal)", num(rf, "target_normal"), num(of, "target_normal"),
                      num(oo, "target_normal")});
  tab.rows.push_back({fmt::format("mean |E| over the {:g} mm grey-matter ROI", e.value("roi_radius_mm", 5.0)),
                      num(rf, "roi_mean_magnitude"), num(of, "roi_mean_magnitude"), num(oo, "roi_mean_magnitude")});
  tab.rows.push_back({"mean |E.n| over the ROI", num(rf, "roi_mean_abs_normal"), num(of, "roi_mean_abs_normal"),
                      num(oo, "roi_mean_abs_normal")});
  if (rf.contains("target_magnitude_v_per_m_at_100pct_mso"))
    tab.rows.push_back({"|E| at the target at 100 % MSO (V/m)",
                        num(rf, "target_magnitude_v_per_m_at_100pct_mso", "{:.0f}"),
                        num(of, "target_magnitude_v_per_m_at_100pct_mso", "{:.0f}"),
                        num(oo, "target_magnitude_v_per_m_at_100pct_mso", "{:.0f}")});
  const std::string coil = e.contains("coil") && e["coil"].is_object() ? e["coil"].value("name", "?") : "?";
  sec.efield_notes.push_back(fmt::format(
      "Model: {} (the other column: {}); coil {}. The coil pose was chosen by the field ({} objective) and the "
      "navigator files carry the {} pose. {}",
      model == "bem" ? "boundary elements on the subject's conductor surface"
                     : "sphere fitted to the head under the coil",
      other, coil, e.value("objective", "?"), e.value("orientation", "field") == "field" ? "optimised" : "rule's",
      e.value("objective_flat", false) ? "The objective changed by less than 2 % over the handle angles: the angle "
                                         "matters little here."
                                       : ""));
  if (e.contains("dose") && e["dose"].is_object()) {
    const auto& d = e["dose"];
    tab.rows.push_back({"E-field dose (% MSO)", "", num(d, "efield_pct_mso", "{:.1f}"), ""});
    tab.rows.push_back(
        {"Stokes depth-adjusted dose (% MSO), for comparison", "", num(d, "stokes_pct_mso", "{:.1f}"), ""});
    const std::string by = d.value("objective", "roi_mean_abs_normal") == "roi_mean_magnitude"
                               ? "mean |E| over the ROI"
                               : "mean |E.n| over the ROI";
    sec.efield_notes.push_back(fmt::format(
        "E-field dose: the intensity that gives this target the field ({}) that the RMT ({} % MSO) gives at {} "
        "({} % RMT; Caulfield et al. 2021, Clin Neurophysiol 132:2199, found 133.5 % RMT on average at the DLPFC).",
        by, num(d, "rmt_pct_mso", "{:g}"), d.value("reference_target", "?"), num(d, "efield_pct_rmt", "{:.1f}")));
    if (d.contains("notes") && d["notes"].is_array())
      for (const auto& n : d["notes"])
        if (n.is_string()) sec.efield_notes.push_back("E-field dose: " + n.get<std::string>() + ".");
    if (d.contains("warnings") && d["warnings"].is_array())
      for (const auto& w : d["warnings"])
        if (w.is_string()) sec.warnings.push_back(w.get<std::string>());
  }
  // The field picture the efield step wrote beside the targets file.
  std::string safe;
  for (char c : t.name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  const std::string png = (std::filesystem::path(dir) / ("efield_" + safe + "_qc.png")).string();
  if (std::filesystem::exists(png))
    sec.pictures.push_back(
        {fmt::format("{}: induced field on the cortex", t.name),
         "The cortex within 40 mm of the target seen from the coil (coil x to the right, handle up), "
         "coloured by |E| from dark blue (0) to yellow (its 98th percentile); white circles: the coil's "
         "windings; white line: the chosen handle direction, grey: the rule's; cyan cross: the "
         "cortical target. A 120 mm square.",
         read_file(png, 16u << 20)});
}

}  // namespace tmsplan::plan
