// protocol.json: the protocol as given, its safety verdict per train, the dose arithmetic per
// target, and the citations behind every number.
#include <fmt/format.h>

#include "internal.hpp"
#include "tmsplan/version.hpp"

namespace tmsplan::plan {

using json = nlohmann::json;

namespace {

json optional_value(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

std::string coordinate_convention(bool localite_lps) {
  return fmt::format(
      "All coordinates are world RAS+ millimetres of the reference T1 (its NIfTI sform frame: x to the subject's "
      "right, y anterior, z superior) unless marked MNI. Coil poses follow SimNIBS: z into the head (minus the scalp "
      "normal), y along the handle axis, x = y x z; the handle direction is given separately. Load "
      "t1w_navigator.nii.gz (qform = sform) in the navigator. Localite files use coordinateSpace {}; Brainsight "
      "files NIfTI:Aligned (v12) and NIfTI:Q:Aligned (v14); ANT .mrk the associated image's frame.",
      localite_lps ? "LPS (x to the left, y posterior, z superior)" : "RAS");
}

std::string protocol_json(const PlanSummary& s, const std::vector<std::string>& warnings) {
  json doc;
  doc["schema_version"] = protocol::schema_version;
  doc["tool"] = "protocol-export";
  doc["version"] = kVersion;
  doc["generated_utc"] = s.generated_utc;
  doc["coordinate_convention"] = coordinate_convention(s.params.localite_lps);
  doc["reference_t1"] = {{"path", s.all.reference_t1.path},    {"sha256", s.all.reference_t1.sha256},
                         {"given_t1", s.params.t1_path},       {"given_t1_sha256", s.t1_sha},
                         {"sha256_matches", s.t1_sha_matches}, {"navigator_t1", "t1w_navigator.nii.gz"}};
  doc["protocol"] = json::parse(protocol::to_json(s.proto));
  doc["protocol_source"] =
      (s.params.protocol.find('/') != std::string::npos ||
       (s.params.protocol.size() > 5 && s.params.protocol.compare(s.params.protocol.size() - 5, 5, ".json") == 0))
          ? "file " + s.params.protocol
          : "preset " + s.params.protocol + " (data/protocols.json)";
  doc["evidence_level"] = s.proto.evidence_level;
  doc["complete"] = protocol::is_complete(s.proto);

  json targets = json::array();
  for (const Target* t : s.selected) targets.push_back(t->name);
  doc["targets"] = targets;

  const auto ppt = protocol::pulses_per_train(s.proto);
  const double intensity = s.proto.intensity_pct_rmt_max ? *s.proto.intensity_pct_rmt_max
                           : s.proto.intensity_pct_rmt   ? *s.proto.intensity_pct_rmt
                                                         : 0.0;
  json trains = json::array();
  for (const Target* t : s.selected) {
    trains.push_back(
        {{"target", t->name},
         {"frequency_hz", s.proto.frequency_hz},
         {"intensity_pct_mt", s.proto.intensity_pct_rmt ? json(intensity) : json(nullptr)},
         {"train_duration_s", optional_value(s.proto.train_duration_s)},
         {"pulses_per_train", ppt ? json(*ppt) : json(nullptr)},
         {"verdict", protocol::to_string(s.safety.verdict)},
         {"train_verdict", protocol::to_string(s.safety.train_verdict)},
         {"inter_train_interval_s", optional_value(s.proto.inter_train_interval_s)},
         {"interval_verdict", protocol::to_string(s.safety.interval_verdict)},
         {"interval_message", s.safety.interval_message},
         {"limit_s", s.safety.train_verdict == protocol::Verdict::unknown ? json(nullptr) : json(s.safety.limit_s)},
         {"limit_is_lower_bound", s.safety.limit_is_lower_bound},
         {"beyond_tested", s.safety.beyond_tested},
         {"table_frequency_hz", s.safety.table_frequency_hz},
         {"table_intensity_pct_mt", s.safety.table_intensity_pct_mt},
         {"message", s.safety.message}});
  }
  json interval = nullptr;
  if (s.table.interval)
    interval = {{"source", s.table.interval->source},
                {"checked", s.table.interval->checked},
                {"rule", s.table.interval->rule},
                {"min_safe_s", s.table.interval->min_safe_s},
                {"unsafe_at_or_below_s", s.table.interval->unsafe_at_or_below_s},
                {"unsafe_above_pct_mt", s.table.interval->unsafe_above_pct_mt}};
  doc["safety"] = {{"table", s.table.source},
                   {"checked_against_primary", s.table.checked_against_primary},
                   {"duration_version", s.table.duration_version},
                   {"duration_version_note", s.table.duration_version_note},
                   {"rule", "each train against the longest safe single train at its frequency and intensity "
                            "(% of the motor threshold at the stimulated site), conservative neighbour between "
                            "table values; and the inter-train interval against the interval rule"},
                   {"inter_train_interval_rule", interval},
                   {"strict", s.params.strict},
                   {"trains", trains}};

  json per_target = json::array();
  const TargetDose* any = s.doses.empty() ? nullptr : &s.doses.front();
  for (const auto& d : s.doses) {
    per_target.push_back({{"target", d.target},
                          {"is_motor", d.is_motor},
                          {"adjustable", d.adjustable},
                          {"d_target_mm", d.d_target_mm},
                          {"d_m1_mm", optional_value(d.d_m1_mm)},
                          {"offset_pct_mso", optional_value(d.offset_pct_mso)},
                          {"mt_target_pct_mso", optional_value(d.mt_target_pct_mso)},
                          {"intensity_pct_mso", optional_value(d.intensity_pct_mso)},
                          {"intensity_max_pct_mso", optional_value(d.intensity_max_pct_mso)},
                          {"exceeds_stimulator", d.exceeds_stimulator},
                          {"arithmetic", d.arithmetic}});
  }
  doc["dose"] = {{"rmt_pct_mso", optional_value(s.params.rmt_pct_mso)},
                 {"formula", "MT_target = RMT + k x (d_target - d_M1); intensity = protocol %RMT x MT_target / 100"},
                 {"k_pct_mso_per_mm", kDoseFactorPctMsoPerMm},
                 {"k_citation", kDoseFactorCitation},
                 {"m1_reference", any && !any->m1_target.empty() ? json(any->m1_target) : json(nullptr)},
                 {"adjustment_possible", any && any->adjustable},
                 {"targets", per_target}};
  if (any && !any->adjustable) doc["dose"]["note"] = "no M1 target in targets.json: no depth adjustment is possible";

  json citations = json::array();
  const auto cite = [&](const std::string& citation, const std::string& used_for, const std::string& status) {
    for (const auto& c : citations)
      if (c["citation"] == citation) return;
    citations.push_back({{"citation", citation}, {"used_for", used_for}, {"status", status}});
  };
  if (!s.proto.citation.empty())
    cite(s.proto.citation, "protocol " + s.proto.id,
         s.proto.citation_status.empty() ? "not stated" : s.proto.citation_status);
  cite(s.table.source, "safety: longest safe single train",
       s.table.checked_against_primary ? "verified, including the table's values"
                                       : "citation verified; the table's values unconfirmed");
  if (s.table.interval)
    cite(s.table.interval->source, "safety: inter-train interval rule",
         s.table.interval->checked ? "verified" : "unconfirmed");
  for (const char* key : {"lefaucheur2020", "stokes2005", "stokes2007"}) {
    const SourceEntry& e = source(key);
    cite(e.citation, e.used_for, e.status);
  }
  for (const Target* t : s.selected)
    if (const SourceEntry* e = source_for_target(t->source)) cite(e->citation, e->used_for, e->status);
  doc["citations"] = citations;
  doc["warnings"] = warnings;
  return doc.dump(2) + "\n";
}

}  // namespace tmsplan::plan
