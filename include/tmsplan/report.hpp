#pragma once
/// The clinician's report: one self-contained HTML page (inline CSS, pictures as base64 PNG data
/// URIs, no external resource, a print stylesheet), and the scalp rendering it shows for each
/// target (a software ray-caster on the head mask with the figure-8 coil drawn).
#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tmsplan/geometry.hpp"
#include "tmsplan/image.hpp"

namespace tmsplan {
class QcFigure;
}

namespace tmsplan::report {

/// A picture: PNG bytes with a title and a caption.
struct Picture {
  std::string title;
  std::string caption;
  std::string png;  ///< Raw PNG bytes (embedded as a data URI).
};

/// A small table: a header row and body rows (plain text cells, escaped when rendered).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

enum class Tone { neutral, ok, warn, bad };

/// A coloured verdict line (safety, dose).
struct Verdict {
  std::string label;    ///< e.g. "M1_hand_left"
  std::string verdict;  ///< e.g. "OK", "EXCEEDS", "UNKNOWN"
  std::string message;
  Tone tone = Tone::neutral;
};

struct TargetSection {
  std::string name;
  std::string description;
  Table coordinates;
  std::vector<Picture> pictures;  ///< The first is shown full width, the others side by side.
  std::vector<std::string> warnings;
  std::string guideline;  ///< What the guideline supports at this target (when it matters).
  Table efield;           ///< The induced field and E-field dose (efield step), when run.
  std::vector<std::string> efield_notes;
};

/// One provenance entry: a tool run (this one or an earlier step's record).
struct Provenance {
  std::string tool;
  std::string version;
  std::string command_line;
  std::string finished;  ///< UTC time, when known.
  std::string source;    ///< The record file it came from ("this run" for protocol-export).
  Table inputs;          ///< role, path, sha256
};

struct ReportData {
  std::string title;
  std::string generated_utc;
  Table summary;  ///< Two columns: item, value.
  std::string coordinate_convention;
  std::vector<std::string> warnings;
  Table protocol;  ///< Two columns: field, value.
  std::vector<Verdict> safety;
  std::vector<std::string> safety_notes;
  Table dose;
  std::vector<Verdict> dose_verdicts;
  std::vector<std::string> dose_notes;
  std::vector<TargetSection> targets;
  /// The single box of what the clinician must still check (shown first, once).
  std::vector<std::string> checks;
  /// Every citation behind the plan: citation, used for, checked status.
  Table sources;
  std::vector<std::string> sources_notes;
  std::vector<Picture> earlier_qc;
  Table files;  ///< The plan's files: name, what, sha256.
  std::vector<Provenance> provenance;
};

/// The whole page. Every text is HTML-escaped; every picture is a data:image/png;base64 URI.
std::string render_html(const ReportData& data);

std::string html_escape(const std::string& text);
std::string base64(const std::string& bytes);

/// The PNG bytes of a QC figure (written through a private temporary file).
std::string figure_png(const QcFigure& figure);

// ---- Scalp rendering (render.cpp) ----------------------------------------------------------------

/// The coil and points drawn on the rendering.
struct CoilDrawing {
  Pose pose;                         ///< Our axes: z into the head, wings along x.
  Eigen::Vector3d handle_direction;  ///< Unit, RAS.
  Eigen::Vector3d scalp_point;       ///< RAS mm.
  Eigen::Vector3d cortical_point;    ///< RAS mm (drawn as a cross: it lies under the skin).
  Eigen::Vector3d view_normal;       ///< Outward scalp normal: the camera looks along its opposite.
  /// A 70 mm figure-8 coil (Magstim D70-like): windings between 28 and 44 mm from each wing's
  /// centre, wing centres at +-44 mm along the coil's x axis (the wings meet at the coil centre).
  double wing_inner_radius_mm = 28.0;
  double wing_outer_radius_mm = 44.0;
  double wing_offset_mm = 44.0;
  double handle_length_mm = 70.0;
};

struct ScalpRenderOptions {
  double fov_mm = 220.0;
  double pixel_mm = 0.5;
  std::array<double, 3> surface_rgb{236, 196, 166};  ///< Lit colour of the surface (skin by default).
  bool show_handle = true;                           ///< The handle arrow.
  bool show_entry = true;                            ///< The scalp entry (yellow dot).
  double scale_bar_mm = 50.0;
};

struct ScalpRendering {
  std::vector<std::uint8_t> rgb;  ///< width x height x 3, row-major.
  int width = 0;
  int height = 0;
  Eigen::Vector3d right{1, 0, 0};  ///< RAS direction of image right.
  Eigen::Vector3d up{0, 0, 1};     ///< RAS direction of image up.
  std::string orientation;         ///< e.g. "up: superior-anterior; right: posterior"
  bool hit_scalp = false;          ///< At least one ray hit the head.
};

/// A mask as a smooth surface (the mask smoothed once) that can be rendered from any side: the
/// head (scalp view) or grey plus white matter (the cortex's outer, pial, surface).
class HeadSurface {
 public:
  explicit HeadSurface(const Mask& head);
  /// Orthographic view from outside along -view_normal, centred on the coil, image up = the
  /// superior direction projected on the view plane (anterior near the vertex); depth-shaded
  /// Lambertian skin, the figure-8 outline at the coil, the handle as an arrow, the scalp entry
  /// (yellow dot) and the cortical target below it (red cross).
  ScalpRendering render(const CoilDrawing& coil, const ScalpRenderOptions& options = {}) const;

 private:
  /// Samples certainly below the 0.5 level from fractional voxel position ijk on (0: unknown).
  int empty_steps(const Eigen::Vector3d& ijk, const Eigen::Vector3d& inverse_step) const;
  void build_skip_table();

  Image density_;  ///< Smoothed mask, 0..1; the surface is its 0.5 level.
  /// Empty-space skipping: density_ in blocks of kBlock voxels; per block, the chessboard
  /// distance (in blocks) to the nearest block whose voxels (one voxel of slack around it) may
  /// reach 0.5 (0 for such a block).
  static constexpr std::int64_t kBlock = 2;
  std::array<std::int64_t, 3> blocks_{0, 0, 0};
  std::vector<std::int32_t> block_distance_;
  Eigen::Matrix4d ras2vox_;
  Eigen::Vector3d box_lo_, box_hi_;  ///< RAS bounding box of the head (for clipping rays).
};

/// Names a RAS direction by its main components, e.g. "left-superior".
std::string direction_name(const Eigen::Vector3d& d);

}  // namespace tmsplan::report
