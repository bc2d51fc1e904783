#pragma once
// Internal to lib/plan: what export_plan hands to the protocol.json and report builders.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "tmsplan/image.hpp"
#include "tmsplan/plan.hpp"
#include "tmsplan/protocol.hpp"
#include "tmsplan/report.hpp"

namespace tmsplan::plan {

/// A citation the code relies on, with what it is used for and its checked status (sources.cpp).
struct SourceEntry {
  std::string key;  ///< e.g. "stokes2007"
  std::string citation;
  std::string used_for;
  std::string status;  ///< Starts with verified, corrected, partly verified or unconfirmed.
};
const std::vector<SourceEntry>& known_sources();
/// The entry with this key (an empty entry when unknown).
const SourceEntry& source(const std::string& key);
/// The library source a target's "source" text cites (Mayka, Fox 2012, ...), or null.
const SourceEntry* source_for_target(const std::string& target_source);
/// Empty when the protocol was studied at this target; otherwise one paragraph: where it was
/// studied and what the Lefaucheur 2020 guideline supports at this target.
std::string guideline_at(const protocol::Protocol& p, const Target& target);

/// Text stating the coordinate frame and coil axes of every file of the plan.
std::string coordinate_convention(bool localite_lps);

struct PlanSummary {
  const Params& params;
  const Targets& all;
  const std::vector<const Target*>& selected;
  const protocol::Protocol& proto;
  const protocol::SafetyTable& table;
  const protocol::SafetyResult& safety;
  const std::vector<TargetDose>& doses;
  std::string subject_dir;
  std::string head_path;  ///< Empty: the head was thresholded from the T1.
  std::string t1_sha;
  bool t1_sha_matches = false;
  std::string generated_utc;
  std::map<std::string, std::string> file_sha;  ///< Plan file name -> sha256 (known so far).
  std::vector<std::string> file_names;          ///< The plan's file names, in writing order.
  std::string localite_instrument_markers;      ///< Its file name (InstrumentMarker<stamp>.xml).
  std::string localite_entry_targets;           ///< Its file name (EntryTarget<stamp>.xml).
};

/// protocol.json: protocol, safety verdict per train, dose arithmetic per target, citations.
std::string protocol_json(const PlanSummary& s, const std::vector<std::string>& warnings);

/// report.html. Adds rendering warnings (e.g. a view that missed the head) to `warnings`.
std::string build_report(const PlanSummary& s, const Image& t1, const Mask& head, const nlohmann::json& record,
                         std::vector<std::string>& warnings);

/// The E-field part of a target's report section (lib/plan/report_efield.cpp): the field of the
/// rule's and the optimised pose under both models, the E-field dose, the field picture that the
/// efield step left in `dir`. Nothing when the target has no efield block.
void add_efield_section(const Target& t, const std::string& dir, report::TargetSection& sec);

}  // namespace tmsplan::plan
