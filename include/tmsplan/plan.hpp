#pragma once
/// The treatment plan: reading targets.json (written by target-pick, schema
/// data/schema/targets.schema.json) with full validation, the dose arithmetic per target, and the
/// export of navigator files, protocol.json and the report into OUTDIR/plan/ as one library call.
///
/// Coordinates are world RAS+ mm of the reference T1 (its NIfTI sform frame) unless a field says
/// MNI; coil poses follow SimNIBS (z into the head, y along the handle axis, x = y cross z).
#include <nlohmann/json.hpp>

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tmsplan/geometry.hpp"
#include "tmsplan/protocol.hpp"

namespace tmsplan {
class Record;
}

namespace tmsplan::plan {

/// The schema identifier targets.json must carry.
inline constexpr const char* kTargetsSchema = "tmsplan-targets/1";

/// The T1 the targets' coordinates refer to.
struct ReferenceT1 {
  std::string path;
  std::string sha256;
  std::array<std::int64_t, 3> dim{0, 0, 0};
  RasMatrix vox2ras;
};

/// One target of targets.json (required fields always set, optional ones when present).
struct Target {
  std::string name;
  std::string description;
  std::string source;
  std::optional<Eigen::Vector3d> mni;  ///< MNI mm, when the target was defined there.
  std::optional<Eigen::Vector3d> prior_ras;
  Eigen::Vector3d cortical_ras{0, 0, 0};
  Eigen::Vector3d scalp_ras{0, 0, 0};
  Eigen::Vector3d scalp_normal_ras{0, 0, 1};  ///< Outward, unit.
  Eigen::Vector3d coil_centre_ras{0, 0, 0};
  Pose coil_pose;                                 ///< Proper rotation (orthonormalised on reading).
  Eigen::Vector3d handle_direction_ras{0, 1, 0};  ///< Unit; the way the handle points.
  double scalp_to_cortex_mm = 0;
  std::string handle_rule;
  std::optional<double> handle_angle_deg;
  nlohmann::json atlas;  ///< As written (object or null).
  std::vector<std::string> warnings;
  nlohmann::json efield;  ///< The efield step's block (targets_efield.json), null without it.
};

struct Targets {
  std::string tool;
  std::string version;
  std::vector<std::string> command_line;
  ReferenceT1 reference_t1;
  std::string coil_convention;
  std::optional<double> hair_offset_mm;
  std::vector<Target> targets;
  /// What reading changed or noticed (e.g. a pose with a little shear orthonormalised).
  std::vector<std::string> notes;
};

/// Parses and validates targets.json text; throws Error(what, source) naming the field
/// (e.g. "targets[1].coil_pose_ras: mirrored (determinant -1)").
Targets parse_targets(const std::string& json_text, const std::string& source);
Targets load_targets(const std::string& path);

/// The "kind" of the target-library entry (data/targets.json) the target was placed from, e.g.
/// "motor" or "prefrontal"; empty for a target that is not a library entry (MNI, RAS, EEG).
std::string target_kind(const Target& t);
/// True for a primary-motor target: a library entry of kind "motor" (M1_hand_left, M1_hand_right).
bool is_motor_target(const Target& t);

/// The Stokes factor the plan uses: about 3 %MSO per mm (Stokes et al. 2005, J Neurophysiol).
inline constexpr double kDoseFactorPctMsoPerMm = protocol::stokes2005_pct_mso_per_mm;
inline constexpr const char* kDoseFactorCitation =
    "Stokes MG et al. (2005) Simple metric for scaling motor threshold based on scalp-cortex distance. "
    "J Neurophysiol (about 3 %MSO per mm; verified, volume and pages unconfirmed); 2.8 %MSO per mm in "
    "Stokes MG, Chambers CD, Gould IC, et al. (2007) Distance-adjusted motor threshold for transcranial "
    "magnetic stimulation. Clin Neurophysiol 118:1617-1625";

/// Dose of one target: its motor threshold corrected for depth and the stimulation intensity.
struct TargetDose {
  std::string target;
  bool is_motor = false;
  bool adjustable = false;  ///< An M1 reference exists (always true for the M1 target itself).
  double d_target_mm = 0;
  std::optional<double> d_m1_mm;
  std::string m1_target;                        ///< Name of the M1 reference, when any.
  std::optional<double> offset_pct_mso;         ///< k * (d_target - d_M1).
  std::optional<double> mt_target_pct_mso;      ///< With --rmt.
  std::optional<double> intensity_pct_mso;      ///< MT_target x protocol %RMT / 100, with --rmt.
  std::optional<double> intensity_max_pct_mso;  ///< The same at the protocol's upper intensity.
  bool exceeds_stimulator = false;
  std::string arithmetic;  ///< Every step, human-readable.
};

/// The dose for every target in `selected` (M1 reference taken among all targets: the one named
/// `m1_name`, or the only / first M1 target). `rmt_pct_mso` is the resting motor threshold
/// measured at M1. Never throws for a missing M1: the arithmetic then says no adjustment is possible.
std::vector<TargetDose> compute_doses(const Targets& all, const std::vector<const Target*>& selected,
                                      const protocol::Protocol& p, std::optional<double> rmt_pct_mso,
                                      const std::string& m1_name, std::vector<std::string>& warnings);

/// What protocol-export does, as plain values (the tool's command line fills it).
struct Params {
  std::string targets_path;
  std::string t1_path;
  std::string head_mask_path;             ///< Empty: SUBJECT_DIR/head_mask.nii.gz when present, else from the T1.
  std::string subject_dir;                ///< Empty: the folder of targets.json.
  std::string protocol;                   ///< Preset id, or a path to a protocol JSON file.
  std::vector<std::string> target_names;  ///< Empty: all targets.
  std::optional<double> rmt_pct_mso;
  std::string m1_target;  ///< Empty: the only (or first) M1 target in targets.json.
  bool localite_lps = false;
  bool strict = false;
  std::string out_dir;
  bool force = false;
};

/// What was written.
struct Result {
  std::string plan_dir;
  std::vector<std::string> files;  ///< Full paths, in writing order (record last).
  std::vector<std::string> warnings;
};

/// Names of the files written into OUTDIR/plan/ (record last), for a plan whose Localite files
/// carry the timestamp `localite_stamp` (nav::localite_timestamp of the plan's Localite files):
/// InstrumentMarker<stamp>.xml and EntryTarget<stamp>.xml as Localite names them, then
/// brainsight_v12.txt, brainsight_v14.txt, ant_markers.mrk, markers.tsv, tms.tsv, protocol.json,
/// t1w_navigator.nii.gz, report.html, protocol_export.json.
std::vector<std::string> output_names(const std::string& localite_stamp);

/// Checks all inputs and outputs, builds everything in memory, then writes all files atomically
/// into OUTDIR/plan/ (created when absent). On any error nothing is left behind. `record` is the
/// run's provenance (inputs, parameters, figures are added; written as protocol_export.json).
Result export_plan(const Params& params, Record& record);

}  // namespace tmsplan::plan
