#pragma once
/// target-pick's library side: the target library, MNI -> subject, snapping to the grey-matter
/// crown, M1 hand-knob refinement, scalp entry and the coil pose (SimNIBS convention, DESIGN.md 3).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tmsplan/image.hpp"

namespace tmsplan {
class OutputSet;
class Record;
}  // namespace tmsplan

namespace tmsplan::targets {

struct LibraryEntry {
  std::string name, description, source, kind, hemisphere, refine, handle_rule, handle_note;
  Eigen::Vector3d mni{0, 0, 0};
  std::map<std::string, int> atlas_label;  ///< e.g. {"brodmann": 4}
};

struct Library {
  std::vector<LibraryEntry> entries;
  std::map<std::string, Eigen::Vector3d> eeg_mni;        ///< 10-10 positions on the MNI scalp
  std::map<std::string, Eigen::Vector3d> fiducials_mni;  ///< Nz, Iz, LPA, RPA
  std::string eeg_source;
  const LibraryEntry* find(const std::string& name) const;
};

/// Reads data/targets.json (or `path`); throws Error naming the file and the field on bad input.
Library load_library(const std::string& path = {});
std::string default_library_path();
/// The names of the library's targets, in its order (target-pick --list-targets).
std::vector<std::string> library_names(const std::string& path = {});

using PointMap = std::function<Eigen::Vector3d(const Eigen::Vector3d&)>;

/// What the earlier steps left for one subject, all on the T1 grid.
struct Subject {
  Grid grid;
  Image t1;                 ///< t1w_biascorr.nii.gz (for the QC picture)
  Mask head;                ///< head_mask.nii.gz
  Mask gm;                  ///< dseg == 2
  Image gm_probability;     ///< probseg_gm.nii.gz when present (empty data: the dseg indicator is used)
  Mask brain;               ///< brain_mask.nii.gz
  Labels brodmann;          ///< atlas_brodmann.nii.gz (empty data: no anatomical refinement)
  PointMap mni_to_subject;  ///< MNI mm -> subject RAS mm
  PointMap subject_to_mni;  ///< subject RAS mm -> MNI mm
};

/// One requested target.
struct Request {
  enum class Kind { Library, Mni, Ras, Eeg };
  Kind kind = Kind::Library;
  std::string name;  ///< library name, EEG label, or a user label for --mni / --ras
  Eigen::Vector3d value{0, 0, 0};
  std::optional<double> handle_angle_deg;  ///< from posterior toward lateral; overrides the rule
};

/// Where the mapped point goes on the cortex: the nearest gyral crown (grey matter within
/// crown_depth_mm of the shallowest near it; the coil's field is strongest there), or the nearest
/// grey matter (the registered coordinate itself, as projecting it onto the cortex does; deeper
/// under the scalp; on warped copies of a head about as consistent as the registration, but not
/// on 5 mm slices: docs/target-pick.md).
enum class Snap { Crown, Nearest };

struct Options {
  double snap_radius_mm = 10.0;  ///< search radius for the grey-matter crown
  double crown_depth_mm = 3.0;   ///< GM within this depth of the hull counts as crown
  Snap snap = Snap::Crown;
  double refine_radius_mm = 12.0;
  double hair_offset_mm = 4.0;
  double deep_warning_mm = 30.0;
};

struct Pick {
  std::string name, description, source, handle_rule;
  std::string kind, hemisphere;  ///< the library entry's (e.g. "motor", "left"); empty for other requests
  nlohmann::json input;
  std::optional<Eigen::Vector3d> mni;
  Eigen::Vector3d prior{0, 0, 0}, cortical{0, 0, 0}, scalp{0, 0, 0}, scalp_nearest{0, 0, 0}, normal{0, 0, 0};
  Eigen::Vector3d centre{0, 0, 0}, handle{0, 0, 0};
  Eigen::Matrix4d pose = Eigen::Matrix4d::Identity();
  double snap_shift_mm = 0, refine_shift_mm = 0, scalp_to_cortex_mm = 0, handle_angle_deg = 45.0;
  double prior_to_gm_mm = 0;  ///< the mapped point's distance to grey matter (0.5 mm lattice)
  nlohmann::json atlas = nlohmann::json::object();
  nlohmann::json classical;  ///< DLPFC: scalp rules vs this target
  std::vector<std::string> warnings;
  nlohmann::json to_json() const;
};

/// The scalp as the 0.5 level of the lightly smoothed head mask: nearest points, normals, rays.
class Scalp {
 public:
  explicit Scalp(const Mask& head);
  /// Nearest point on the scalp surface to p (sub-voxel).
  Eigen::Vector3d nearest(const Eigen::Vector3d& p) const;
  /// Scalp entry for a target inside the head: the scalp point whose (smoothed) outward normal
  /// passes through the target.
  Eigen::Vector3d entry(const Eigen::Vector3d& target) const;
  /// Outward unit normal near a scalp point (smoothed over a few mm).
  Eigen::Vector3d normal(const Eigen::Vector3d& p) const;
  /// Where a ray from an inside point leaves the head; nullopt if it never does within max_mm.
  std::optional<Eigen::Vector3d> exit(const Eigen::Vector3d& from, const Eigen::Vector3d& direction,
                                      double max_mm = 300) const;
  /// Smoothed head indicator at p (Gaussian, sigma 0.7 mm): > 0.5 inside the head.
  double inside_level(const Eigen::Vector3d& p) const;
  /// Distance (mm) from p to the nearest boundary voxel of the head mask.
  double depth(const Eigen::Vector3d& p) const;
  /// Centre of the boundary voxel nearest to p (RAS).
  Eigen::Vector3d nearest_boundary(const Eigen::Vector3d& p) const;

 private:
  struct Sums {
    double level = 0;
    Eigen::Vector3d away = Eigen::Vector3d::Zero();
  };
  Sums sums(const Eigen::Vector3d& p, double sigma) const;

  Mask head_;
  Eigen::Matrix4d ras2vox_;
  Eigen::Vector3d spacing_;
  std::vector<Eigen::Vector3d> boundary_;  // boundary voxel centres (RAS), scan order
  Eigen::Vector3d origin_;                 // bucket grid over the boundary points
  std::int64_t cells_[3] = {1, 1, 1};
  std::vector<std::int64_t> start_;  // per cell: first index into order_
  std::vector<std::size_t> order_;   // boundary indices sorted by cell
};

/// Picks one target. Throws Error naming the target when it cannot be placed (outside the head,
/// no grey matter near it, unknown name).
Pick pick(const Subject& subject, const Scalp& scalp, const Library& library, const Request& request,
          const Options& options = {});

/// DLPFC comparison: EEG F3 projected onto this scalp, and the 5 cm rule from an M1 scalp point.
nlohmann::json classical_positions(const Subject& subject, const Scalp& scalp, const Library& library,
                                   const Pick& dlpfc, const std::optional<Pick>& m1);

}  // namespace tmsplan::targets

namespace tmsplan::targets {

/// Files of one subject's folder (DESIGN.md section 8) that target-pick reads.
struct SubjectFiles {
  std::string dir;
  std::string reference_t1;  ///< the T1 the user gave skull-strip (from skull_strip.json)
  std::string reference_sha256;
};

/// Loads masks and labels from the subject folder onto one grid (refusing mismatches). The point
/// maps are set by the caller (from cortex-map's transforms).
Subject load_subject(const std::string& dir, SubjectFiles* files = nullptr);

/// The targets.json document (schema data/schema/targets.schema.json).
nlohmann::json targets_document(const std::vector<Pick>& picks, const Grid& grid, const SubjectFiles& files,
                                double hair_offset_mm);

}  // namespace tmsplan::targets

namespace tmsplan::targets {

/// target-pick's inputs.
struct Params {
  std::string subject_dir;  ///< the folder skull-strip, segment and cortex-map filled
  std::string library;      ///< target library (empty: the data folder's targets.json)
  std::string output;       ///< targets.json to write
  std::vector<Request> requests;
  Options options;
};

/// Output roles (OutputSet) that run() writes besides targets.json, with their file names.
std::vector<std::pair<std::string, std::string>> output_names();
/// The folder of a targets.json path ("." for a bare name): where the other outputs go.
std::string output_dir(const std::string& targets_json);

/// target-pick: loads the subject and its MNI map, places every request, compares prefrontal
/// targets with the classical scalp rules, writes params.output (targets.json) and the QC picture
/// (out: registered with output_names() and checked by the caller) and fills the record.
std::vector<Pick> run(const Params& params, const OutputSet& out, Record& record);

/// One tab-separated line per target: name, cortical and scalp RAS, scalp-to-cortex distance.
std::string summary_table(const std::vector<Pick>& picks);

}  // namespace tmsplan::targets
