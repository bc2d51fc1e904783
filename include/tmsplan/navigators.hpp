#pragma once
/// Neuronavigation file formats: Localite (InstrumentMarker / TriggerMarker / EntryTarget XML),
/// Brainsight target text, ANT visor2 .mrk JSON, and plain TSV (markers.tsv, tms.tsv).
///
/// In memory every pose is ours: RAS millimetres of the subject's T1, SimNIBS coil axes (z into
/// the head, y along the handle). Each format's axis and frame conventions are converted here and
/// nowhere else; docs/navigators.md lists them and what was checked against which sample.
///
/// Writers return the file's text (the caller writes it atomically); every pose is
/// orthonormalised before writing. Readers take the text and a source name (usually the path) for
/// error messages, validate everything, throw tmsplan::Error naming the source on malformed input,
/// and return orthonormalised poses.
#include "tmsplan/geometry.hpp"
#include "tmsplan/protocol.hpp"

#include <Eigen/Core>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tmsplan::nav {

/// One planned coil placement.
struct Marker {
  std::string name;
  Pose pose;                              ///< RAS mm, our (SimNIBS) coil axes.
  std::optional<Eigen::Vector3d> entry;   ///< Scalp entry point, RAS mm, when known.
  std::optional<Eigen::Vector3d> target;  ///< Cortical target point, RAS mm, when known.
};

/// A point target as Localite keeps it: an entry point on the scalp and a target in the brain.
struct EntryTarget {
  std::string name;
  Eigen::Vector3d entry{0, 0, 0};   ///< RAS mm.
  Eigen::Vector3d target{0, 0, 0};  ///< RAS mm.
};

// ---- Axis conventions (exposed so tests and docs can state them once) ----------------------

/// Localite coil axes: x = our z (into the head), y = -our y, z = our x.
/// M_ours = M_localite * F with F = [[0,0,1],[0,-1,0],[1,0,0]] on the 3x3 part (F is its own inverse).
Eigen::Matrix4d localite_to_ours(const Eigen::Matrix4d& m_localite);
Eigen::Matrix4d ours_to_localite(const Eigen::Matrix4d& m_ours);

/// Brainsight coil axes: x = -our x, y = our y, z = -our z (its z points out of the head).
/// M_ours = M_bs * diag(-1, 1, -1) on the 3x3 part.
Eigen::Matrix4d brainsight_to_ours(const Eigen::Matrix4d& m_bs);
Eigen::Matrix4d ours_to_brainsight(const Eigen::Matrix4d& m_ours);

// ---- Localite TMS Navigator ------------------------------------------------------------------

/// The world frame of a Localite file (`coordinateSpace`): RAS for NIfTI-based sessions,
/// LPS for DICOM-based ones. Poses convert by flipping the world side only (D * M).
enum class LocaliteSpace { ras, lps };

struct LocaliteWriteOptions {
  LocaliteSpace space = LocaliteSpace::ras;
};

/// Markers read from an InstrumentMarkerList or TriggerMarkerList.
struct LocaliteMarkers {
  LocaliteSpace space = LocaliteSpace::ras;  ///< As the file declared it (poses are RAS anyway).
  std::vector<Marker> markers;
  /// TriggerMarkers whose matrix is the identity (Localite's value for an untracked coil); skipped.
  std::size_t untracked_skipped = 0;
};

/// Localite names its files by kind and a 17-digit timestamp, YYYYMMDDhhmmssSSS:
/// `InstrumentMarker<stamp>.xml`, `EntryTarget<stamp>.xml`, `TriggerMarkers_Coil<n>_<stamp>.xml`,
/// and readers (e.g. SimNIBS's Localite import) take the file's kind and date from that name.
/// The stamp of a plan is deterministic: 2000-01-01 (a date that is plainly not a clock time) and
/// a time of day taken from the sha256 of `content` (the plan's Localite files), so the same plan
/// gives the same names and two plans do not collide in one session folder.
std::string localite_timestamp(std::string_view content);
/// "InstrumentMarker<stamp>.xml" and "EntryTarget<stamp>.xml"; throws Error unless `stamp` is 17
/// digits forming a valid date and time.
std::string localite_instrument_marker_name(const std::string& stamp);
std::string localite_entry_target_name(const std::string& stamp);
/// True for a Localite-style file name of this kind ("InstrumentMarker", "EntryTarget"): the kind,
/// 17 digits forming a valid date and time, ".xml".
bool is_localite_name(std::string_view file_name, std::string_view kind);

/// `InstrumentMarkerList` XML, one InstrumentMarker per marker (name -> description).
std::string write_localite_instrument_markers(const std::vector<Marker>& markers,
                                              const LocaliteWriteOptions& options = {});
/// Reads an `InstrumentMarkerList` or a `TriggerMarkerList` (coordinateSpace RAS or LPS).
LocaliteMarkers read_localite_markers(std::string_view text, const std::string& source);

/// `EntryTargetList` XML: Entry and Target elements paired by index; name -> Target description.
std::string write_localite_entry_targets(const std::vector<EntryTarget>& targets,
                                         const LocaliteWriteOptions& options = {});
std::vector<EntryTarget> read_localite_entry_targets(std::string_view text, const std::string& source);

// ---- Brainsight ------------------------------------------------------------------------------

/// Brainsight coordinate systems that are the T1's NIfTI RAS world (accepted on read and write):
/// NIfTI:Aligned, NIfTI:Scanner and their NIfTI:Q:* / NIfTI:S:* forms. Brainsight (internal),
/// World (DICOM projects), NIfTI:MNI-152 and NIfTI:Talairach are refused.
bool brainsight_system_is_ras(std::string_view coordinate_system);

struct BrainsightWriteOptions {
  int version = 12;  ///< 7..14; 7 writes the lower-case "units:" line.
  std::string coordinate_system = "NIfTI:Aligned";
  std::string created_by = "tmsplan";
};

/// The targets section of a Brainsight export.
struct BrainsightTargets {
  int version = 0;
  std::string coordinate_system;
  bool has_target_section = false;  ///< false: the file had no "# Target Name" section.
  std::vector<Marker> targets;
};

/// Header lines, units/encoding/notes lines, `# Target Name` column header, one row per marker.
std::string write_brainsight_targets(const std::vector<Marker>& markers, const BrainsightWriteOptions& options = {});
/// Reads the targets section; samples, electrodes and landmarks sections are skipped. A file
/// without a targets section gives an empty list (has_target_section = false).
BrainsightTargets read_brainsight_targets(std::string_view text, const std::string& source);

// ---- ANT visor2 ------------------------------------------------------------------------------

/// `AssociatedImageInfo`: the qform of the T1 the poses refer to (NIfTI header fields).
struct AntImageInfo {
  std::array<double, 3> quatern{0, 0, 0};  ///< quatern_b, c, d
  std::array<double, 3> qoffset{0, 0, 0};
  std::array<double, 4> pixdim{0, 0, 0, 0};  ///< pixdim[0] (qfac) .. pixdim[3]
};

struct AntWriteOptions {
  std::string coil_type;              ///< CoilInfo.Type, e.g. "MagStim_D70".
  std::string coil_id;                ///< CoilInfo.Id (coil model file name), may be empty.
  std::optional<AntImageInfo> image;  ///< Written as zeros when absent (as SimNIBS does).
  std::string app_version;            ///< SourceInfo.AppVersion.
};

struct AntMarkers {
  std::optional<AntImageInfo> image;
  std::vector<Marker> markers;
  std::size_t skipped = 0;  ///< TargetMarkers entries that are not a CoilTarget.
};

/// .mrk JSON with CoordinateSystem "ASSOCIATED_IMAGE", PositionalUnit "mm",
/// CoilAxesConvention "simnibs": RigidTransformMatrix4x4 is our pose as is.
std::string write_ant_markers(const std::vector<Marker>& markers, const AntWriteOptions& options = {});
AntMarkers read_ant_markers(std::string_view text, const std::string& source);

// ---- Plain TSV (in the spirit of the draft BIDS TMS extension) ---------------------------------

/// markers.tsv columns: name, target_x/y/z, entry_x/y/z (n/a when unknown), pose_00 .. pose_23
/// (rows 0-2 of the 4x4 pose, row-major: the x, y, z axes and centre are the columns).
std::string write_markers_tsv(const std::vector<Marker>& markers);
std::vector<Marker> read_markers_tsv(std::string_view text, const std::string& source);

/// One row of tms.tsv: which protocol is given at which target.
struct TargetProtocol {
  std::string target_name;
  protocol::Protocol protocol;
};

/// tms.tsv columns: target_name, protocol_id, frequency_hz, intensity_pct_rmt, pulses_per_train,
/// train_duration_s, inter_train_interval_s, trains, pulses_per_session, sessions (n/a when unknown).
std::string write_tms_tsv(const std::vector<TargetProtocol>& rows);

// ---- Shared helpers of the format modules (not a stable API) ----------------------------------
namespace detail {

/// Strict, locale-independent number: optional sign, digits, fraction, exponent; nothing else
/// (surrounding blanks allowed). Throws Error "<what>: '<text>' is not a number" naming source.
double parse_number(std::string_view text, const std::string& source, const std::string& what);
/// Same, for a whole number in [min, max].
long long parse_integer(std::string_view text, const std::string& source, const std::string& what, long long min,
                        long long max);
/// Checks a pose read from a file (finite, bottom row 0 0 0 1, rotation part close to a proper
/// rotation, centre within 10 m) and returns it orthonormalised.
Pose checked_pose(const Eigen::Matrix4d& m, const std::string& source, const std::string& what);
/// Checks a pose given to a writer and returns it orthonormalised (throws Error without a file).
Pose pose_for_writing(const Pose& pose, const std::string& what);
/// Fixed-point text with `decimals` digits after the point ("-0.000" printed as "0.000").
std::string fixed(double value, int decimals);
/// Splits into lines, dropping a trailing '\r' of each (CRLF files) and a UTF-8 BOM.
std::vector<std::string_view> split_lines(std::string_view text);
std::vector<std::string_view> split(std::string_view line, char sep);
/// Throws Error when a name cannot be written into a tab-separated line.
void check_tsv_name(const std::string& name, const std::string& what);

}  // namespace detail

}  // namespace tmsplan::nav
