// Reading targets.json (data/schema/targets.schema.json) with validation: every failure is an
// Error naming the file and the field.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>
#include <set>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/json_geometry.hpp"
#include "tmsplan/plan.hpp"
#include "tmsplan/targets.hpp"

namespace tmsplan::plan {

namespace {

using json = nlohmann::json;

// Rotation parts further than this from orthonormal are refused; closer ones are orthonormalised
// (navigators and JSON round-offs leave a little shear).
constexpr double kMaxShear = 0.05;
// Unit vectors may be off by this much (then renormalised).
constexpr double kUnitTolerance = 0.01;
// Points further than this from the origin are not in a head.
constexpr double kMaxCoordinateMm = 10000.0;
// coil_centre_ras must equal the pose's centre within this.
constexpr double kCentreToleranceMm = 0.01;

std::string type_name(const json& v) {
  if (v.is_null()) return "null (a NaN or infinity written by the producer?)";
  return v.type_name();
}

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(fmt::format("{}: {}", field, what), source_);
  }

  const json& member(const json& obj, const std::string& key, const std::string& path) const {
    const auto it = obj.find(key);
    if (it == obj.end()) fail(path + key, "is missing");
    return *it;
  }

  std::string text(const json& obj, const std::string& key, const std::string& path, bool required = true) const {
    const auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) fail(path + key, "is missing");
      return {};
    }
    if (!it->is_string()) fail(path + key, "must be a string, got " + type_name(*it));
    return it->get<std::string>();
  }

  double number(const json& v, const std::string& field) const { return number_from_json(v, field, source_); }

  std::optional<double> optional_number(const json& obj, const std::string& key, const std::string& path) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return std::nullopt;
    return number(*it, path + key);
  }

  Eigen::Vector3d vec3(const json& v, const std::string& field) const {
    const Eigen::Vector3d out = vec3_from_json(v, field, source_);
    if (out.norm() > kMaxCoordinateMm) fail(field, "is more than 10 m from the origin");
    return out;
  }

  Eigen::Vector3d unit(const json& v, const std::string& field) const {
    const Eigen::Vector3d d = vec3(v, field);
    if (std::abs(d.norm() - 1.0) > kUnitTolerance)
      fail(field, fmt::format("must be a unit vector, has length {:.4g}", d.norm()));
    return d.normalized();
  }

  Eigen::Matrix4d matrix4(const json& v, const std::string& field) const {
    const Eigen::Matrix4d m = mat4_from_json(v, field, source_);
    if ((m.row(3) - Eigen::RowVector4d(0, 0, 0, 1)).cwiseAbs().maxCoeff() > 1e-6)
      fail(field, "bottom row must be 0 0 0 1");
    return m;
  }

  /// A coil pose: proper rotation (det > 0), shear up to kMaxShear removed; returns the note.
  Pose pose(const json& v, const std::string& field, std::string& note) const {
    const Eigen::Matrix4d m = matrix4(v, field);
    const Eigen::Matrix3d r = m.topLeftCorner<3, 3>();
    const double det = r.determinant();
    if (std::abs(det) < 1e-3) fail(field, fmt::format("degenerate rotation (determinant {:.3g})", det));
    if (det < 0) fail(field, fmt::format("mirrored: its axes are left-handed (determinant {:.3g})", det));
    const double shear = (r.transpose() * r - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff();
    if (shear > kMaxShear)
      fail(field,
           fmt::format("rotation part is not orthonormal (|R'R - I| = {:.3g}, at most {} accepted)", shear, kMaxShear));
    if (m.topRightCorner<3, 1>().norm() > kMaxCoordinateMm) fail(field, "centre is more than 10 m from the origin");
    if (shear > 1e-6) note = fmt::format("{}: orthonormalised (|R'R - I| was {:.2g})", field, shear);
    return Pose(orthonormalize(m));
  }

 private:
  std::string source_;
};

}  // namespace

std::string target_kind(const Target& t) {
  // target-pick names a library target by its library name; other targets (MNI, RAS, EEG) have
  // no kind. The library is read once per process.
  static const targets::Library library = targets::load_library();
  const targets::LibraryEntry* entry = library.find(t.name);
  return entry ? entry->kind : std::string();
}

bool is_motor_target(const Target& t) { return target_kind(t) == "motor"; }

namespace {

ReferenceT1 read_reference(const Reader& rd, const json& doc) {
  const json& ref = rd.member(doc, "reference_t1", "");
  ReferenceT1 r;
  if (!ref.is_object()) rd.fail("reference_t1", "must be an object");
  r.path = rd.text(ref, "path", "reference_t1.");
  r.sha256 = rd.text(ref, "sha256", "reference_t1.");
  if (r.sha256.size() != 64 || r.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    rd.fail("reference_t1.sha256", "must be 64 lower-case hex digits");
  const json& dim = rd.member(ref, "dim", "reference_t1.");
  if (!dim.is_array() || dim.size() != 3) rd.fail("reference_t1.dim", "must be an array of 3 integers");
  for (int i = 0; i < 3; ++i) {
    const json& d = dim[std::size_t(i)];
    if (!d.is_number_integer() || d.get<long long>() < 1 || d.get<long long>() > 32767)
      rd.fail(fmt::format("reference_t1.dim[{}]", i), "must be an integer from 1 to 32767");
    r.dim[std::size_t(i)] = d.get<long long>();
  }
  r.vox2ras = RasMatrix(rd.matrix4(rd.member(ref, "vox2ras", "reference_t1."), "reference_t1.vox2ras"));
  if (std::abs(r.vox2ras.m.topLeftCorner<3, 3>().determinant()) < 1e-6) rd.fail("reference_t1.vox2ras", "is singular");
  return r;
}

// One entry of "targets" (at: "targets[i]."), checked alone and against its own pose.
Target read_target(const Reader& rd, const json& o, const std::string& at, std::set<std::string>& names,
                   std::vector<std::string>& notes) {
  Target t;
  t.name = rd.text(o, "name", at);
  if (t.name.empty()) rd.fail(at + "name", "is empty");
  if (t.name.find_first_of("\t\r\n") != std::string::npos || t.name[0] == '#')
    rd.fail(at + "name", "contains a tab or line break, or starts with '#'");
  if (!names.insert(t.name).second) rd.fail(at + "name", "'" + t.name + "' is used by another target");
  t.description = rd.text(o, "description", at);
  t.source = rd.text(o, "source", at);
  if (o.contains("mni")) t.mni = rd.vec3(o["mni"], at + "mni");
  if (o.contains("prior_ras")) t.prior_ras = rd.vec3(o["prior_ras"], at + "prior_ras");
  t.cortical_ras = rd.vec3(rd.member(o, "cortical_ras", at), at + "cortical_ras");
  t.scalp_ras = rd.vec3(rd.member(o, "scalp_ras", at), at + "scalp_ras");
  t.coil_centre_ras = rd.vec3(rd.member(o, "coil_centre_ras", at), at + "coil_centre_ras");
  std::string note;
  t.coil_pose = rd.pose(rd.member(o, "coil_pose_ras", at), at + "coil_pose_ras", note);
  if (!note.empty()) notes.push_back(note);
  t.handle_direction_ras = rd.unit(rd.member(o, "handle_direction_ras", at), at + "handle_direction_ras");
  t.scalp_normal_ras = rd.unit(rd.member(o, "scalp_normal_ras", at), at + "scalp_normal_ras");
  t.scalp_to_cortex_mm = rd.number(rd.member(o, "scalp_to_cortex_mm", at), at + "scalp_to_cortex_mm");
  if (t.scalp_to_cortex_mm < 0 || t.scalp_to_cortex_mm > 100)
    rd.fail(at + "scalp_to_cortex_mm", fmt::format("{:g} mm is outside 0..100 mm", t.scalp_to_cortex_mm));
  for (const char* key : {"prior_to_gm_mm", "snap_shift_mm", "refine_shift_mm"}) {
    const auto v = rd.optional_number(o, key, at);
    if (v && *v < 0) rd.fail(at + key, "must not be negative");
  }
  t.handle_rule = rd.text(o, "handle_rule", at, false);
  t.handle_angle_deg = rd.optional_number(o, "handle_angle_deg", at);
  if (o.contains("efield")) {
    if (!o["efield"].is_object()) rd.fail(at + "efield", "must be an object");
    t.efield = o["efield"];
  }
  if (o.contains("atlas")) {
    if (!o["atlas"].is_object() && !o["atlas"].is_null()) rd.fail(at + "atlas", "must be an object");
    t.atlas = o["atlas"];
  }
  const json& warnings = rd.member(o, "warnings", at);
  if (!warnings.is_array()) rd.fail(at + "warnings", "must be an array of strings");
  for (std::size_t w = 0; w < warnings.size(); ++w) {
    if (!warnings[w].is_string()) rd.fail(fmt::format("{}warnings[{}]", at, w), "must be a string");
    t.warnings.push_back(warnings[w].get<std::string>());
  }

  // Consistency of the pose with the points and directions it was built from.
  const Eigen::Vector3d centre = t.coil_pose.m.topRightCorner<3, 1>();
  if ((centre - t.coil_centre_ras).norm() > kCentreToleranceMm)
    rd.fail(at + "coil_centre_ras",
            fmt::format("differs from the centre of coil_pose_ras by {:.3g} mm", (centre - t.coil_centre_ras).norm()));
  const Eigen::Vector3d z = t.coil_pose.m.block<3, 1>(0, 2), y = t.coil_pose.m.block<3, 1>(0, 1);
  const double z_angle = angle_deg(z, -t.scalp_normal_ras);
  if (z_angle > 10.0)
    notes.push_back(fmt::format("{}coil_pose_ras: z axis is {:.1f} deg from minus the scalp normal", at, z_angle));
  if (std::abs(y.dot(t.handle_direction_ras)) < std::cos(10.0 * M_PI / 180.0))
    rd.fail(at + "handle_direction_ras",
            fmt::format("is {:.1f} deg from the coil's y axis (the handle axis) in coil_pose_ras",
                        angle_deg(y, t.handle_direction_ras)));
  if ((t.coil_centre_ras - t.scalp_ras).norm() > 40.0)
    rd.fail(at + "coil_centre_ras",
            fmt::format("is {:.1f} mm from scalp_ras (more than 40 mm)", (t.coil_centre_ras - t.scalp_ras).norm()));
  return t;
}

}  // namespace

Targets parse_targets(const std::string& json_text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("not valid JSON: {}", e.what()), source);
  }
  const Reader rd(source);
  if (!doc.is_object()) rd.fail("(top level)", "must be a JSON object");
  Targets out;
  const std::string schema = rd.text(doc, "schema", "");
  if (schema != kTargetsSchema)
    rd.fail("schema", fmt::format("'{}' is not supported (this version reads '{}')", schema, kTargetsSchema));
  out.tool = rd.text(doc, "tool", "");
  out.version = rd.text(doc, "version", "");
  if (const auto it = doc.find("command_line"); it != doc.end()) {
    if (!it->is_array()) rd.fail("command_line", "must be an array of strings");
    for (std::size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) rd.fail(fmt::format("command_line[{}]", i), "must be a string");
      out.command_line.push_back((*it)[i].get<std::string>());
    }
  }

  out.reference_t1 = read_reference(rd, doc);

  const std::string space = rd.text(doc, "space", "");
  if (space != "subject RAS+ (NIfTI world frame of reference_t1)")
    rd.fail("space", fmt::format("'{}' is not the subject's RAS+ frame this version reads", space));
  const std::string units = rd.text(doc, "units", "");
  if (units != "mm") rd.fail("units", fmt::format("'{}' is not supported (only mm)", units));
  out.coil_convention = rd.text(doc, "coil_convention", "");
  out.hair_offset_mm = rd.optional_number(doc, "hair_offset_mm", "");
  if (out.hair_offset_mm && (*out.hair_offset_mm < 0 || *out.hair_offset_mm > 30))
    rd.fail("hair_offset_mm", "must be from 0 to 30 mm");

  const json& list = rd.member(doc, "targets", "");
  if (!list.is_array()) rd.fail("targets", "must be an array");
  if (list.empty()) rd.fail("targets", "is empty: no target to plan");
  std::set<std::string> names;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = fmt::format("targets[{}].", i);
    const json& o = list[i];
    if (!o.is_object()) rd.fail(fmt::format("targets[{}]", i), "must be an object");
    out.targets.push_back(read_target(rd, o, at, names, out.notes));
  }
  return out;
}

Targets load_targets(const std::string& path) { return parse_targets(read_file(path, 64u << 20), path); }

}  // namespace tmsplan::plan
