#pragma once
/// The cortex-map step (tools/cortex-map): registration, atlases in the subject, surfaces, maps.
/// See docs/cortex-map.md.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "tmsplan/data.hpp"
#include "tmsplan/deformable.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/mni_map.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/resample.hpp"

namespace tmsplan::cortexmap {

inline constexpr const char* kTemplateDir = "/usr/share/mricron/templates";

struct Params {
  std::string t1;     ///< bias-corrected T1 (t1w_biascorr.nii.gz)
  std::string brain;  ///< brain_mask.nii.gz, on the T1 grid
  std::string head;   ///< head_mask.nii.gz, on the T1 grid
  std::string dseg;   ///< dseg.nii.gz (0/1 CSF/2 GM/3 WM); empty: intensity classes, with a warning
  std::string template_head = kMniTemplateHead;
  std::string template_brain = kMniTemplateBrain;
  std::string atlas_dir = kTemplateDir;
  DeformableOptions registration;
};

/// One atlas carried into the subject.
struct SubjectAtlas {
  std::string key;          ///< "brodmann", "aal", "harvardoxford"
  std::string source;       ///< the MNI atlas file
  std::string restriction;  ///< "grey matter dilated by 1 voxel", "brain"
  Labels labels;
  std::map<int, std::string> names;  ///< labels present in the subject
};

/// The atlases of `atlas_dir` (brodmann, aal, HarvardOxford-cort-maxprob-thr0-1mm) resampled
/// nearest-neighbour onto `subject_grid` through `map`; brodmann and HarvardOxford restricted to
/// `gm` dilated by one voxel, aal to `brain`. Names from <atlas>.nii.txt where it exists
/// ("BA<n>" for brodmann, the number otherwise). Throws Error naming a missing atlas file.
std::vector<SubjectAtlas> warp_atlases(const MniMap& map, const Grid& subject_grid, const std::string& atlas_dir,
                                       const Mask& gm, const Mask& brain);

/// Output roles (OutputSet) that run() writes, with their contract file names (DESIGN.md 8).
std::vector<std::pair<std::string, std::string>> output_names();

/// Runs the whole step: reads and checks the inputs (one grid; a template with its brain),
/// registers, warps the atlases, makes surfaces and maps, writes every output of `out` (registered
/// with output_names() and checked by the caller) and fills the record's parameters and figures.
void run(const Params& params, const OutputSet& out, Record& record);

/// Maps one point: "mni" -> subject RAS or "ras" -> MNI, through the transforms in `subject_dir`.
nlohmann::json map_point(const std::string& subject_dir, const Eigen::Vector3d& point, bool from_mni);

}  // namespace tmsplan::cortexmap
