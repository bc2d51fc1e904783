#pragma once
/// The induced electric field of a TMS coil (DESIGN.md 10; docs/efield.md).
///
/// Coil models are sets of magnetic dipoles in the coil frame (SimNIBS: z into the head, y along
/// the handle, origin at the centre of the casing bottom). Field models:
///   - primary: -dA/dt of the dipoles in free space;
///   - sphere: closed form for a spherically symmetric conductor (Heller & van Hulsteyn 1992),
///     which depends only on the sphere's centre and has no radial component;
///   - bem: one homogeneous compartment bounded by a closed triangle surface; piecewise-constant
///     surface charge from the condition that no current leaves the conductor, factorised once.
/// Units: positions in RAS mm (world) or metres (coil files), fields in V/m per A/us of dI/dt.
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tmsplan/surface.hpp"

namespace tmsplan::efield {

/// A coil as magnetic dipoles in its own frame.
struct Coil {
  std::string name;                         ///< e.g. "MagStim_D70" or "fig8-70"
  std::string source;                       ///< file path or the preset's provenance
  std::string file;                         ///< the coil file read (empty for presets)
  std::string stimulator;                   ///< from a .ccd header, when given
  std::optional<double> didt_max_a_per_us;  ///< dI/dt at 100 % MSO (A/us), when known
  Eigen::Matrix3Xd position_m;              ///< dipole positions, metres, coil frame
  Eigen::Matrix3Xd moment;                  ///< dipole moments per ampere (A m^2 / A = m^2)
  double casing_radius_mm = 0;              ///< extent of the dipoles in the coil plane (for pictures)
  Eigen::Vector2d wing_offset_mm{0, 0};     ///< centres of the two wings at +-x (0 when unknown)
  nlohmann::json geometry;                  ///< parameters of a built-in model (empty for coil files)
  std::size_t size() const { return static_cast<std::size_t>(position_m.cols()); }
};

/// Reads a SimNIBS .ccd file: header line with key=value pairs (dIdtmax, stimulator, coilname),
/// the number of dipoles, then one "x y z mx my mz" line each (metres, per ampere). Throws Error
/// naming the file and the line for a missing header, a count that does not match, a
/// non-numeric or non-finite value, a truncated file.
Coil read_ccd(const std::string& path);

/// Parametric flat figure-8 coil: two spiral windings side by side along x, current in opposite
/// senses, the windings `height_mm` above the casing bottom (at z = -height_mm).
struct Figure8Geometry {
  double inner_radius_mm = 0;
  double outer_radius_mm = 0;
  double turns = 0;           ///< turns per wing
  double wing_centre_mm = 0;  ///< each wing's centre at x = +-wing_centre_mm
  double height_mm = 0;       ///< winding plane above the casing bottom
  double element_mm = 2.0;    ///< size of the dipole elements (discretisation)
  /// +1: positive current gives a field along +y under the centre (SimNIBS D70 convention).
  int direction = 1;
};
Coil figure8(const Figure8Geometry& g, const std::string& name = "figure8");

/// Built-in presets (data/coils/presets.json) and files: "fig8-70", or a path to a .ccd file.
Coil load_coil(const std::string& name_or_path);
std::vector<std::string> preset_names();

/// Fits a Figure8Geometry to a reference coil by matching their fields in an 85 mm sphere on
/// planes 15, 20 and 25 mm below the surface (least squares over radii, height, wing centres;
/// the turns scale the field linearly). Returns the fit and its relative L2 residual.
struct Figure8Fit {
  Figure8Geometry geometry;
  double residual = 0;
};
Figure8Fit fit_figure8(const Coil& reference);
/// The fit as JSON (geometry in the presets' form, residual, the reference's name and dI/dt).
nlohmann::json fit_figure8_json(const Coil& reference);

/// The coil's dipoles placed in the world by a pose (4x4, RAS mm; columns x, y, z axes, centre).
struct Dipoles {
  Eigen::Matrix3Xd position_mm;  ///< RAS mm
  Eigen::Matrix3Xd moment;       ///< m^2 per ampere, RAS axes
  /// Dipoles grouped into compact clusters of the coil's frame (set by place()): cluster c holds
  /// cluster_order[cluster_first[c] .. cluster_first[c + 1]). Empty: no grouping.
  std::vector<int> cluster_order = {}, cluster_first = {};
};
Dipoles place(const Coil& coil, const Eigen::Matrix4d& pose);

/// Throws Error unless the 3x3 part is a proper rotation (orthonormal within 1e-4, det +1) and
/// the last row is 0 0 0 1. `what` names the pose in the message.
void check_pose(const Eigen::Matrix4d& pose, const std::string& what);

/// A field model: E at points (RAS mm) for a set of dipoles, V/m per A/us.
class FieldModel {
 public:
  virtual ~FieldModel() = default;
  virtual std::string name() const = 0;
  /// E at each point (3 x n). Deterministic, parallel over points.
  virtual Eigen::Matrix3Xd field(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm) const = 0;
  /// Throws Error when a point lies outside the conductor or a dipole inside it.
  virtual void check_geometry(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm) const = 0;
  virtual nlohmann::json describe() const = 0;
};

/// -dA/dt in free space (no conductor).
Eigen::Matrix3Xd primary_field(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm);
/// The primary field where each cluster of dipoles seen from farther than `far` times its radius
/// counts as one dipole (its total moment at its moment-weighted centre): the error falls as
/// (radius / distance)^2. For the boundary-element right-hand side, which only the secondary
/// field sees.
Eigen::Matrix3Xd primary_field_clustered(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm, double far);

/// Spherically symmetric conductor around `centre` (RAS mm). `radius_mm` only serves the
/// geometry check and the record (the field does not depend on it); 0: largest sphere below the
/// dipoles.
class SphereModel : public FieldModel {
 public:
  explicit SphereModel(const Eigen::Vector3d& centre_mm, double radius_mm = 0)
      : centre_(centre_mm), radius_(radius_mm) {}
  std::string name() const override { return "sphere"; }
  Eigen::Matrix3Xd field(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm) const override;
  void check_geometry(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm) const override;
  nlohmann::json describe() const override;
  const Eigen::Vector3d& centre() const { return centre_; }
  double radius() const { return radius_; }

 private:
  Eigen::Vector3d centre_;
  double radius_;
};

/// Least-squares sphere through points (algebraic fit); throws Error with fewer than 10 points.
SphereModel fit_sphere(const std::vector<Eigen::Vector3d>& points);

/// Boundary-element model of one homogeneous compartment bounded by `surface` (closed,
/// outward-oriented, RAS mm). Assembles and factorises the charge equations once (O(n^3)).
class BemModel : public FieldModel {
 public:
  explicit BemModel(const Mesh& surface);
  ~BemModel() override;
  BemModel(BemModel&&) noexcept;
  std::string name() const override { return "bem"; }
  Eigen::Matrix3Xd field(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm) const override;
  /// The field of the dipoles whose surface charges are known (from charges()). cluster_far > 0:
  /// the primary field sees each cluster of coil dipoles farther than that many of its radii as
  /// one dipole (primary_field_clustered), and the sums are single precision (relative rounding
  /// ~1e-6), for maps of many points that are stored as 32-bit floats.
  Eigen::Matrix3Xd field(const Dipoles& dipoles, const Eigen::VectorXd& charges, const Eigen::Matrix3Xd& points_mm,
                         double cluster_far = 0) const;
  void check_geometry(const Dipoles& dipoles, const Eigen::Matrix3Xd& points_mm) const override;
  nlohmann::json describe() const override;
  const Mesh& surface() const;
  /// Surface charge (V/m, i.e. sigma/eps0) for one set of dipoles.
  Eigen::VectorXd charges(const Dipoles& dipoles) const;
  /// Charges for several poses at once (one column each): one solve for all.
  Eigen::MatrixXd charges(const std::vector<Dipoles>& poses) const;
  /// A fixed set of points whose field is wanted for many poses: precomputes the secondary-field
  /// operator so each pose costs one right-hand side and a matrix-vector product.
  class Probe {
   public:
    Eigen::Matrix3Xd field(const Dipoles& dipoles) const;
    /// The field of each pose (one solve for all of them).
    std::vector<Eigen::Matrix3Xd> fields(const std::vector<Dipoles>& poses) const;
    Eigen::Matrix3Xd points;
    Eigen::MatrixXd secondary;  ///< (3n x triangles): the field at the points of unit charge on each triangle
    const BemModel* model = nullptr;
  };
  Probe probe(const Eigen::Matrix3Xd& points_mm) const;
  /// Is the point inside the closed surface (winding number)?
  bool inside(const Eigen::Vector3d& p) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A triangulated sphere (geodesic subdivision of the icosahedron, frequency n: 20 n^2
/// triangles), outward oriented. With `semi_axes` (a, b, c) it is scaled into an ellipsoid.
Mesh geodesic_sphere(int frequency, const Eigen::Vector3d& centre, const Eigen::Vector3d& semi_axes);

/// The conductor surface of a head: the brain mask closed with a ball (outer CSF and sulci
/// inside), smoothed, sampled along rays of a geodesic sphere from its centre (star-shaped),
/// then moved `offset_mm` outwards (negative: inwards). Closed, outward oriented.
struct ConductorOptions {
  int frequency = 16;  ///< 20 n^2 triangles (16: 5,120)
  double closing_radius_mm = 6.0;
  double offset_mm = 2.5;     ///< the brain mask's edge to the inner skull
  double smoothing_mm = 3.0;  ///< Gaussian smoothing of the mask before sampling
};
Mesh conductor_surface(const Mask& brain, const ConductorOptions& options = {});

/// The handle turned about the coil's z axis at a fixed centre: the objective over an ROI (points
/// and unit inward normals) at each angle from `pose0`'s y axis (counter-clockwise seen along
/// -z, i.e. from y toward -x), `step_deg` apart over [-half_range, half_range).
struct AngleSweep {
  double best_deg = 0;
  std::vector<std::pair<double, double>> profile;  ///< (angle, objective)
  bool flat = false;                               ///< the objective changes by less than 2 % over the angles
};
/// objective: "normal" (mean |E.n|) or "magnitude" (mean |E|).
AngleSweep sweep_angles(const Coil& coil, const FieldModel& model, const Eigen::Matrix3Xd& points,
                        const Eigen::Matrix3Xd& normals, const Eigen::Matrix4d& pose0, const std::string& objective,
                        double step_deg, double half_range_deg = 90);

/// Writes `x,y,z,ex,ey,ez` lines for the probe subcommand.
std::string format_points_field(const Eigen::Matrix3Xd& points, const Eigen::Matrix3Xd& field);

/// `efield probe`: field of one pose at listed points.
struct ProbeParams {
  std::string coil = "fig8-70";
  std::string pose;    ///< targets.json or a 4x4 matrix file
  std::string target;  ///< with a targets.json: which target (default: the first)
  std::string points;  ///< text file of x,y,z lines
  std::string model = "sphere";
  std::optional<Eigen::Vector3d> sphere_centre;
  std::string surface;  ///< GIfTI, for --model bem
  double didt = 1.0;    ///< A/us
};
/// Returns the text to print (x,y,z,ex,ey,ez per line).
std::string probe(const ProbeParams& p);

/// The efield step on a subject folder (docs/efield.md).
struct Params {
  std::string subject_dir;
  std::string targets;  ///< default: subject_dir/targets.json
  std::string coil = "fig8-70";
  std::string model = "bem";          ///< "bem" or "sphere"
  std::string objective = "normal";   ///< "normal" or "magnitude"
  std::string orientation = "field";  ///< which pose the navigator files get: "field" or "rule"
  double roi_radius_mm = 5.0;
  double normal_smoothing_mm = 2.0;          ///< pial normals averaged along the surface over about this width (mm)
  std::string dose_objective = "magnitude";  ///< what the E-field dose matches: "magnitude" or "normal"
  double search_radius_mm = 10.0;
  double angle_step_deg = 5.0;
  std::optional<double> didt;    ///< A/us at 100 % MSO (default: from the coil file)
  std::optional<double> rmt;     ///< resting motor threshold, % MSO
  std::string reference_target;  ///< target whose field RMT is matched (default: the M1 target)
  bool strict = false;
  bool monophasic = false;           ///< compare angles over the whole circle, not modulo 180
  double max_intensity = 100.0;      ///< % MSO above which a dose is refused under strict
  double conductor_offset_mm = 2.5;  ///< the conductor surface beyond the brain mask's edge
};
}  // namespace tmsplan::efield

namespace tmsplan {
class OutputSet;
class Record;
namespace efield {
/// Names of the step's outputs (role, file) for an OutputSet.
std::vector<std::pair<std::string, std::string>> output_names(const std::vector<std::string>& target_names);
/// The same for a run's parameters (the targets of params.targets, else subject_dir/targets.json).
std::vector<std::pair<std::string, std::string>> output_names(const Params& params);
/// Target names listed in a targets.json (checked), for naming outputs before work starts.
std::vector<std::string> target_names(const std::string& targets_path);
void run(const Params& params, tmsplan::OutputSet& out, tmsplan::Record& record);
}  // namespace efield
}  // namespace tmsplan
