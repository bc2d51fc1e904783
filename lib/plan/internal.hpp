#pragma once
// Internal to lib/plan: what export_plan hands to the protocol.json and report builders.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "tmsplan/image.hpp"
#include "tmsplan/plan.hpp"
#include "tmsplan/protocol.hpp"

namespace tmsplan::plan {

/// Text stating the coordinate frame and coil axes of every file of the plan.
std::string coordinate_convention(bool localite_lps);

struct PlanSummary {
  const Params &params;
  const Targets &all;
  const std::vector<const Target *> &selected;
  const protocol::Protocol &proto;
  const protocol::SafetyTable &table;
  const protocol::SafetyResult &safety;
  const std::vector<TargetDose> &doses;
  std::string subject_dir;
  std::string head_path; ///< Empty: the head was thresholded from the T1.
  std::string t1_sha;
  bool t1_sha_matches = false;
  std::string generated_utc;
  std::map<std::string, std::string> file_sha; ///< Plan file name -> sha256 (known so far).
};

/// protocol.json: protocol, safety verdict per train, dose arithmetic per target, citations.
std::string protocol_json(const PlanSummary &s, const std::vector<std::string> &warnings);

/// report.html. Adds rendering warnings (e.g. a view that missed the head) to `warnings`.
std::string build_report(const PlanSummary &s, const Image &t1, const Mask &head, const nlohmann::json &record,
                         std::vector<std::string> &warnings);

} // namespace tmsplan::plan
