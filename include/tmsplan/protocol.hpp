#pragma once
/// rTMS protocols: presets with their citations (data/protocols.json), user protocol files,
/// validation, a safety check of each train against the Rossi 2009 table
/// (data/safety_limits.json), and dose adjustment for scalp-to-cortex distance.
///
/// All loaders throw tmsplan::Error naming the source and the field on bad input.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tmsplan::protocol {

/// The schema version of protocols.json, protocol.json and safety_limits.json this library reads.
inline constexpr int schema_version = 1;

/// One rTMS protocol. Train fields may be absent only in presets, and only when a note in
/// `verify` says why (the source did not give them or they could not be confirmed).
struct Protocol {
  std::string id;  ///< Short identifier, e.g. "passard2007".
  std::string name;
  std::string citation;
  /// The citation's checked status: "verified", "corrected", "unconfirmed", optionally followed by
  /// "; " and what else was or was not confirmed (JSON "citation_status"; empty: not stated).
  std::string citation_status;
  std::string evidence_level;  ///< Lefaucheur 2020 level "A", "B", "C", or "trial" for one study.
  std::string target;          ///< Target id, e.g. "M1_hand_left".
  double frequency_hz = 0;
  std::optional<double> intensity_pct_rmt;      ///< Planned intensity, % resting motor threshold.
  std::optional<double> intensity_pct_rmt_max;  ///< Upper end of a recommended range.
  std::optional<double> train_duration_s;
  std::optional<int> pulses_per_train;
  std::optional<double> inter_train_interval_s;
  std::optional<int> trains;
  int pulses_per_session = 0;
  std::optional<int> pulses_per_session_max;  ///< Upper end of a recommended range.
  int sessions = 0;
  std::string schedule;  ///< e.g. "10 daily sessions (5 per week)".
  std::string use;       ///< One sentence on when to use it.
  /// field -> one plain sentence: why the value is absent, unconfirmed at its source, or taken from
  /// another source (JSON "notes"; the older key "verify" is read too). No note: verified.
  std::map<std::string, std::string> verify;
};

/// True when intensity, trains, pulses per train and the inter-train interval are all known.
bool is_complete(const Protocol& p);
/// Pulses in one train (given, or frequency x duration); empty when unknown.
std::optional<int> pulses_per_train(const Protocol& p);

/// Default locations in the repository's data directory (compile definition TMSPLAN_DATA_DIR).
std::string default_presets_path();
std::string default_safety_limits_path();

/// protocols.json: {"schema_version": 1, "presets": [ ... ]}; each preset validated.
std::vector<Protocol> parse_presets(const std::string& json_text, const std::string& source);
std::vector<Protocol> load_presets(const std::string& path = default_presets_path());
/// The presets' ids, in the file's order (protocol-export --list-protocols).
std::vector<std::string> preset_ids(const std::string& path = default_presets_path());
/// The preset with this id; throws Error listing the known ids otherwise.
const Protocol& find_preset(const std::vector<Protocol>& presets, const std::string& id);

/// A user protocol: one JSON object with "schema_version": 1 and the protocol's fields; it must
/// be complete (intensity, trains, train duration or pulses per train, inter-train interval).
Protocol parse_protocol(const std::string& json_text, const std::string& source);
Protocol load_protocol(const std::string& path);
/// The protocol as a JSON object (schema_version included), as parse_protocol reads it back.
std::string to_json(const Protocol& p);

/// Checks one protocol (see parse_protocol for `require_complete`); throws Error naming source
/// and field: non-positive or non-finite values, pulses_per_session != trains x pulses per train,
/// pulses_per_train != frequency x train duration, missing notes for absent fields.
void validate(const Protocol& p, const std::string& source, bool require_complete);

// ---- Safety ------------------------------------------------------------------------------------

/// One cell of the table: the longest safe single train, or only a lower bound (">5": no adverse
/// effect at the longest train tested, so the table sets no limit there).
struct SafetyCell {
  double seconds = 0;
  bool lower_bound = false;
};

struct SafetyRow {
  double frequency_hz = 0;
  std::vector<SafetyCell> cells;  ///< One per SafetyTable::intensities_pct_mt.
  std::string verify;             ///< Legacy per-row note (read, never shown); empty normally.
};

/// The inter-train interval rule (Chen et al. 1997): `min_safe_s` between trains was shown safe;
/// `unsafe_at_or_below_s` or less was unsafe above `unsafe_above_pct_mt` % MT.
struct IntervalRule {
  std::string source;
  bool checked = false;
  std::string rule;  ///< The rule in one or two plain sentences.
  double min_safe_s = 0;
  double unsafe_at_or_below_s = 0;
  double unsafe_above_pct_mt = 0;
};

/// Maximum safe single-train durations by frequency and intensity (% motor threshold).
struct SafetyTable {
  std::string source;
  bool checked_against_primary = false;
  std::string about;  ///< The table's one-paragraph description.
  /// "original" (the table's own durations) or "reduced_25pct" (25 % shorter, after Chen 1997).
  std::string duration_version = "original";
  std::string duration_version_note;       ///< One sentence saying which version and why.
  std::optional<IntervalRule> interval;    ///< Absent in older tables: intervals then unchecked.
  std::vector<double> intensities_pct_mt;  ///< Ascending.
  std::vector<SafetyRow> rows;             ///< Ascending frequency.
};

SafetyTable parse_safety_table(const std::string& json_text, const std::string& source);
SafetyTable load_safety_table(const std::string& path = default_safety_limits_path());

enum class Verdict { ok, exceeds, unknown };
/// "ok", "exceeds", "unknown".
std::string to_string(Verdict v);

struct SafetyResult {
  Verdict verdict = Verdict::unknown;  ///< check_protocol: the worse of the train and interval verdicts.
  double limit_s = 0;                  ///< The cell used (0 when unknown).
  bool limit_is_lower_bound = false;   ///< The cell was ">x".
  bool beyond_tested = false;          ///< ok, but the train is longer than the longest tested.
  double table_frequency_hz = 0;       ///< Row and column used (conservative neighbours).
  double table_intensity_pct_mt = 0;
  std::string message;                          ///< One human-readable line (the train check).
  Verdict train_verdict = Verdict::unknown;     ///< The duration table's verdict alone.
  Verdict interval_verdict = Verdict::unknown;  ///< The inter-train interval rule's verdict.
  bool interval_shown_unsafe = false;           ///< At or below the interval shown unsafe.
  std::string interval_message;                 ///< One human-readable line (the interval check).
};

/// Checks one train. Between table values the conservative neighbour is used: the next higher
/// frequency row and the next higher intensity column; below the lowest row or column, the lowest
/// (lower frequency and intensity are no less safe). Above the highest row or column: unknown.
SafetyResult check_train(const SafetyTable& table, double frequency_hz, double intensity_pct_mt,
                         double train_duration_s);
/// Checks an inter-train interval against the table's interval rule: exceeds (breaks the rule)
/// below min_safe_s, unknown without a rule. Fills the interval_* fields of a result.
void check_interval(const SafetyTable& table, double interval_s, double intensity_pct_mt, SafetyResult& result);
/// Checks the protocol's train at its highest intensity (intensity_pct_rmt_max when given) and its
/// inter-train interval; each is unknown when a value it needs is not known. `verdict` is the
/// worse of the two (exceeds, then unknown, then ok).
SafetyResult check_protocol(const SafetyTable& table, const Protocol& p);

// ---- Dose --------------------------------------------------------------------------------------

/// Stokes et al. 2005 (J Neurophysiol): motor threshold rises about 3 %MSO per mm of extra
/// scalp-to-cortex distance; 2.8 %MSO/mm in Stokes et al. 2007 (Clin Neurophysiol 118:1617-1625).
inline constexpr double stokes2005_pct_mso_per_mm = 3.0;
inline constexpr double stokes2007_pct_mso_per_mm = 2.8;

struct DoseAdjustment {
  double mt_target_pct_mso = 0;
  bool exceeds_stimulator = false;  ///< Above 100 %MSO: not achievable.
  std::string arithmetic;           ///< e.g. "MT_target = 45 + 3 x (16.5 - 13) = 55.5 %MSO ..."
};

/// The depth term of the Stokes rule, k * (d_target - d_M1) in %MSO: what a target's motor
/// threshold adds to M1's (distances scalp to cortex in mm, k in %MSO per mm). No checks.
inline double depth_offset(double d_target_mm, double d_m1_mm, double k_pct_mso_per_mm = stokes2005_pct_mso_per_mm) {
  return k_pct_mso_per_mm * (d_target_mm - d_m1_mm);
}

/// MT_target = MT_M1 + depth_offset(d_target, d_M1, k), distances in mm measured on the subject's MRI.
/// Throws Error on non-finite or negative inputs, or a result <= 0.
DoseAdjustment adjust_for_depth(double mt_m1_pct_mso, double d_target_mm, double d_m1_mm,
                                double k_pct_mso_per_mm = stokes2005_pct_mso_per_mm);

}  // namespace tmsplan::protocol
