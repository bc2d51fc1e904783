// The efield step: the field of each planned coil pose at its cortical target, the coil turned
// and moved by the field, the E-field dose (docs/efield.md).
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "internal.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/json_geometry.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/protocol.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/surface.hpp"
#include "tmsplan/targets.hpp"

namespace tmsplan::efield {

namespace {

double r4(double v) { return std::round(v * 1e4) / 1e4; }

// One target of targets.json as the step needs it.
struct Target {
  std::string name, kind, hemisphere;
  Eigen::Vector3d cortical, scalp, normal;
  Eigen::Matrix4d rule_pose;
  double rule_angle = 45, depth_mm = 0;
  int sense = 1;  // +1: the handle angle grows counter-clockwise about the coil's z axis
};

std::vector<Target> read_targets(const nlohmann::json& doc, const std::string& file) {
  if (!doc.contains("targets") || !doc["targets"].is_array() || doc["targets"].empty())
    throw Error("no targets in the file (expected a targets.json of target-pick)", file);
  targets::Library library;
  try {
    library = targets::load_library();
  } catch (const Error&) {}
  std::vector<Target> out;
  for (const auto& t : doc["targets"]) {
    Target x;
    if (!t.contains("name") || !t["name"].is_string()) throw Error("a target has no name", file);
    x.name = t["name"].get<std::string>();
    const std::string w = "target " + x.name + ": ";
    for (const char* key : {"cortical_ras", "scalp_ras", "scalp_normal_ras", "coil_pose_ras"})
      if (!t.contains(key)) throw Error(w + "missing " + key, file);
    x.cortical = vec3_from_json(t["cortical_ras"], w + "cortical_ras", file);
    x.scalp = vec3_from_json(t["scalp_ras"], w + "scalp_ras", file);
    x.normal = vec3_from_json(t["scalp_normal_ras"], w + "scalp_normal_ras", file).normalized();
    x.rule_pose = mat4_from_json(t["coil_pose_ras"], w + "coil_pose_ras", file);
    check_pose(x.rule_pose, w + "coil_pose_ras");
    if (t.contains("handle_angle_deg") && t["handle_angle_deg"].is_number())
      x.rule_angle = t["handle_angle_deg"].get<double>();
    if (t.contains("scalp_to_cortex_mm") && t["scalp_to_cortex_mm"].is_number())
      x.depth_mm = t["scalp_to_cortex_mm"].get<double>();
    // Domain facts from the library entry (kind, hemisphere), not from the name.
    std::string lib_name = x.name;
    if (t.contains("input") && t["input"].is_object() && t["input"].value("kind", "") == "library" &&
        t["input"].contains("value") && t["input"]["value"].is_string())
      lib_name = t["input"]["value"].get<std::string>();
    if (const auto* e = library.find(lib_name)) {
      x.kind = e->kind;
      x.hemisphere = e->hemisphere;
    }
    if (x.hemisphere.empty()) {
      double mx = x.cortical.x();
      if (t.contains("mni") && t["mni"].is_array() && t["mni"].size() == 3 && t["mni"][0].is_number())
        mx = t["mni"][0].get<double>();
      x.hemisphere = mx < 0 ? "left" : "right";
    }
    // target-pick turns the handle from posterior (0) toward lateral (90): counter-clockwise
    // about z (into the head) on the left hemisphere, clockwise on the right.
    x.sense = x.hemisphere == "left" ? 1 : -1;
    out.push_back(x);
  }
  return out;
}

// The handle direction at angle `deg` for a coil whose z axis is `z`, given the rule's pose.
Eigen::Matrix4d pose_at(const Target& t, const Eigen::Vector3d& centre, const Eigen::Vector3d& z, double deg) {
  Eigen::Vector3d y0 = t.rule_pose.block<3, 1>(0, 1);
  y0 = (y0 - y0.dot(z) * z).normalized();
  const double a = t.sense * (deg - t.rule_angle) * M_PI / 180.0;
  const Eigen::Vector3d y = std::cos(a) * y0 + std::sin(a) * z.cross(y0);
  Eigen::Matrix4d p = Eigen::Matrix4d::Identity();
  p.block<3, 1>(0, 0) = y.cross(z);
  p.block<3, 1>(0, 1) = y;
  p.block<3, 1>(0, 2) = z;
  p.block<3, 1>(0, 3) = centre;
  return p;
}

// Field figures of one pose at one target.
struct Figures {
  double objective = 0;                      // the chosen objective over the ROI
  double mean_mag = 0;                       // mean |E| over the ROI
  double mean_abs_normal = 0;                // mean |E.n| over the ROI (n: inward pial normal)
  double mean_normal = 0;                    // signed mean E.n
  double target_mag = 0, target_normal = 0;  // at the cortical target
  // The ROI statistic: mean |E| (magnitude) or mean |E.n|, and its name in the JSON.
  double statistic(bool magnitude) const { return magnitude ? mean_mag : mean_abs_normal; }
  static const char* statistic_name(bool magnitude) { return magnitude ? "roi_mean_magnitude" : "roi_mean_abs_normal"; }
  nlohmann::json to_json(double didt) const {
    nlohmann::json j = {{"objective", r4(objective)},
                        {"roi_mean_magnitude", r4(mean_mag)},
                        {"roi_mean_abs_normal", r4(mean_abs_normal)},
                        {"roi_mean_signed_normal", r4(mean_normal)},
                        {"target_magnitude", r4(target_mag)},
                        {"target_normal", r4(target_normal)}};
    if (didt > 0) j["target_magnitude_v_per_m_at_100pct_mso"] = std::round(target_mag * didt * 10) / 10;
    return j;
  }
};

// Evaluates one model over the ROI (row 0 of `pts` is the target itself).
class Evaluator {
 public:
  Evaluator(const FieldModel& model, const Eigen::Matrix3Xd& pts, const Eigen::Matrix3Xd& normals, bool magnitude)
      : model_(model), pts_(pts), normals_(normals), magnitude_(magnitude) {
    if (const auto* bem = dynamic_cast<const BemModel*>(&model))
      probe_ = std::make_unique<BemModel::Probe>(bem->probe(pts));
  }
  Figures operator()(const Dipoles& d) const { return figures(probe_ ? probe_->field(d) : model_.field(d, pts_)); }
  std::vector<Figures> operator()(const std::vector<Dipoles>& poses) const {
    std::vector<Figures> out;
    if (probe_) {
      for (const Eigen::Matrix3Xd& e : probe_->fields(poses)) out.push_back(figures(e));
    } else {
      for (const Dipoles& d : poses) out.push_back(figures(model_.field(d, pts_)));
    }
    return out;
  }

 private:
  Figures figures(const Eigen::Matrix3Xd& e) const {
    Figures f;
    const Eigen::Index n = pts_.cols() - 1;
    for (Eigen::Index i = 1; i <= n; ++i) {
      const double en = e.col(i).dot(normals_.col(i));
      f.mean_mag += e.col(i).norm();
      f.mean_abs_normal += std::abs(en);
      f.mean_normal += en;
    }
    f.mean_mag /= double(n);
    f.mean_abs_normal /= double(n);
    f.mean_normal /= double(n);
    f.target_mag = e.col(0).norm();
    f.target_normal = e.col(0).dot(normals_.col(0));
    f.objective = f.statistic(magnitude_);
    return f;
  }

  const FieldModel& model_;
  Eigen::Matrix3Xd pts_, normals_;
  bool magnitude_;
  std::unique_ptr<BemModel::Probe> probe_;
};

struct Candidate {
  Eigen::Vector3d centre, z;
};

struct Search {
  Eigen::Matrix4d pose;
  double angle = 0, shift_mm = 0;
  Figures figures;
  std::vector<std::pair<double, double>> angle_profile;  // (angle, objective) at the rule's centre
  bool flat = false;
  int poses = 0;
};

// Coil centres on the scalp at offsets (du, dv) mm from the rule's entry in its tangent plane.
using CandidateMaker = std::function<Candidate(double du, double dv)>;

// The rule's own pose rides in the first stage's solve; its figures come back in `rule`.
Search search(const Target& t, const Coil& coil, const Evaluator& eval, const CandidateMaker& at, const Params& p,
              const Dipoles& d_rule, Figures& rule) {
  Search s;
  const double half = p.monophasic ? 180.0 : 90.0;
  std::vector<double> angles;
  for (double a = -half + p.angle_step_deg; a <= half + 1e-9; a += p.angle_step_deg) angles.push_back(t.rule_angle + a);
  // Each stage's poses are evaluated together (one boundary-element solve for all of them), then
  // scanned in order: ties keep the earlier candidate, as a pose-by-pose search would.
  struct Try {
    Candidate c;
    double a, du, dv;
  };
  auto values = [&](const std::vector<Try>& tries, const Dipoles* extra = nullptr) {
    std::vector<Dipoles> poses;
    poses.reserve(tries.size() + 1);
    for (const Try& x : tries) poses.push_back(place(coil, pose_at(t, x.c.centre, x.c.z, x.a)));
    if (extra) poses.push_back(*extra);
    s.poses += static_cast<int>(tries.size());
    std::vector<Figures> f = eval(poses);
    if (extra) {
      rule = f.back();
      f.pop_back();
    }
    return f;
  };
  const Candidate rule_c{t.rule_pose.block<3, 1>(0, 3), t.rule_pose.block<3, 1>(0, 2)};
  // 1. Every angle at the rule's centre (biphasic pulses: a half circle around the rule's angle,
  //    since angles 180 degrees apart give the same |E| and |E.n|).
  double best = -1, best_a = t.rule_angle, lo = 1e300, hi = -1e300;
  std::vector<Try> ring;
  for (double a : angles) ring.push_back({rule_c, a, 0, 0});
  const std::vector<Figures> f1 = values(ring, &d_rule);
  for (std::size_t i = 0; i < ring.size(); ++i) {
    const double v = f1[i].objective;
    s.angle_profile.emplace_back(ring[i].a, v);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    if (v > best + 1e-12) best = v, best_a = ring[i].a, s.figures = f1[i];
  }
  s.flat = hi > 0 && (hi - lo) / hi < 0.02;
  // 2. Centres on a 5 mm grid within the search radius at the best angle and its neighbours,
  //    then the 2.5 mm neighbours of the best centre, then the angles within 20 degrees there.
  //    Ties keep the earlier candidate (the rule's centre comes first).
  Candidate best_c = rule_c;
  double best_u = 0, best_v = 0;
  auto take_best = [&](const std::vector<Try>& tries) {
    const std::vector<Figures> f = values(tries);
    for (std::size_t i = 0; i < tries.size(); ++i)
      if (f[i].objective > best + 1e-12) {
        best = f[i].objective, best_c = tries[i].c, best_a = tries[i].a, best_u = tries[i].du, best_v = tries[i].dv;
        s.figures = f[i];
      }
  };
  auto try_centres = [&](const std::vector<std::pair<double, double>>& offsets) {
    std::vector<Try> tries;
    for (const auto& [du, dv] : offsets) {
      if (std::hypot(du, dv) > p.search_radius_mm + 1e-9 || (du == best_u && dv == best_v)) continue;
      const Candidate c = at(du, dv);
      for (double da : {0.0, -p.angle_step_deg, p.angle_step_deg}) tries.push_back({c, best_a + da, du, dv});
    }
    take_best(tries);
  };
  std::vector<std::pair<double, double>> coarse, fine;
  const int n = static_cast<int>(std::floor(p.search_radius_mm / 5.0));
  for (int i = -n; i <= n; ++i)
    for (int j = -n; j <= n; ++j) coarse.emplace_back(5.0 * i, 5.0 * j);
  try_centres(coarse);
  for (int i = -1; i <= 1; ++i)
    for (int j = -1; j <= 1; ++j) fine.emplace_back(best_u + 2.5 * i, best_v + 2.5 * j);
  try_centres(fine);
  std::vector<Try> turns;
  for (double da = -20; da <= 20 + 1e-9; da += p.angle_step_deg)
    if (std::abs(da) >= 1e-9) turns.push_back({best_c, best_a + da, best_u, best_v});
  take_best(turns);
  // Keep the handle angle in (-180, 180].
  double a = std::fmod(best_a, 360.0);
  if (a <= -180) a += 360;
  if (a > 180) a -= 360;
  s.angle = a;
  s.pose = pose_at(t, best_c.centre, best_c.z, best_a);
  s.shift_mm = (best_c.centre - rule_c.centre).norm();
  return s;
}

// The coil centre over the scalp point at (du, dv) mm from the rule's entry along the rule's
// coil x and y axes: the nearest scalp point, its outward normal, the hair offset.
CandidateMaker candidate_maker(const Target& t, const targets::Scalp& scalp, double hair_mm) {
  return [&t, &scalp, hair_mm](double du, double dv) {
    const Eigen::Vector3d u = t.rule_pose.block<3, 1>(0, 0), v = t.rule_pose.block<3, 1>(0, 1);
    const Eigen::Vector3d on = scalp.nearest(t.scalp + du * u + dv * v);
    const Eigen::Vector3d nrm = scalp.normal(on);
    return Candidate{on + hair_mm * nrm, -nrm};
  };
}

// Pial vertices within r of p, target first.
struct Roi {
  Eigen::Matrix3Xd points, normals;  // column 0: the target (normal of the nearest vertex)
  std::vector<int> vertices;
};
Roi make_roi(const Mesh& pial, const std::vector<Eigen::Vector3d>& vn, const Eigen::Vector3d& target, double r) {
  std::vector<int> idx;
  int nearest = 0;
  double dn = 1e300;
  for (std::size_t v = 0; v < pial.vertices.size(); ++v) {
    const double d = (pial.vertices[v] - target).norm();
    if (d < dn) dn = d, nearest = static_cast<int>(v);
    if (d <= r) idx.push_back(static_cast<int>(v));
  }
  if (idx.size() < 3)
    throw Error(
        fmt::format("fewer than 3 pial vertices within {:.1f} mm of the target: is pial.surf.gii this subject's?", r));
  Roi roi;
  roi.vertices = idx;
  roi.points.resize(3, static_cast<Eigen::Index>(idx.size() + 1));
  roi.normals.resize(3, static_cast<Eigen::Index>(idx.size() + 1));
  roi.points.col(0) = target;
  roi.normals.col(0) = -vn[static_cast<std::size_t>(nearest)];
  for (std::size_t i = 0; i < idx.size(); ++i) {
    roi.points.col(static_cast<Eigen::Index>(i + 1)) = pial.vertices[static_cast<std::size_t>(idx[i])];
    roi.normals.col(static_cast<Eigen::Index>(i + 1)) = -vn[static_cast<std::size_t>(idx[i])];
  }
  return roi;
}

std::string safe_name(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return o;
}

}  // namespace

AngleSweep sweep_angles(const Coil& coil, const FieldModel& model, const Eigen::Matrix3Xd& points,
                        const Eigen::Matrix3Xd& normals, const Eigen::Matrix4d& pose0, const std::string& objective,
                        double step_deg, double half_range_deg) {
  if (points.cols() < 1 || normals.cols() != points.cols()) throw Error("sweep_angles: points and normals must match");
  // The Evaluator treats column 0 as the target: repeat the first point there.
  Eigen::Matrix3Xd pts(3, points.cols() + 1), nrm(3, points.cols() + 1);
  pts << points.col(0), points;
  nrm << normals.col(0), normals;
  const Evaluator eval(model, pts, nrm, objective == "magnitude");
  AngleSweep out;
  double best = -1, lo = 1e300, hi = -1e300;
  const Eigen::Vector3d z = pose0.block<3, 1>(0, 2), y0 = pose0.block<3, 1>(0, 1);
  std::vector<double> angles;
  std::vector<Dipoles> poses;
  for (double a = -half_range_deg; a < half_range_deg - 1e-9; a += step_deg) {
    const double r = a * M_PI / 180;
    const Eigen::Vector3d y = std::cos(r) * y0 + std::sin(r) * z.cross(y0);
    Eigen::Matrix4d p = pose0;
    p.block<3, 1>(0, 0) = y.cross(z);
    p.block<3, 1>(0, 1) = y;
    angles.push_back(a);
    poses.push_back(place(coil, p));
  }
  const std::vector<Figures> f = eval(poses);  // one solve for every angle
  for (std::size_t i = 0; i < angles.size(); ++i) {
    const double a = angles[i], v = f[i].objective;
    out.profile.emplace_back(a, v);
    lo = std::min(lo, v), hi = std::max(hi, v);
    if (v > best + 1e-12) best = v, out.best_deg = a;
  }
  out.flat = hi > 0 && (hi - lo) / hi < 0.02;
  return out;
}

std::vector<std::string> target_names(const std::string& path) {
  const nlohmann::json doc = detail::read_json(path);
  std::vector<std::string> names;
  if (!doc.contains("targets") || !doc["targets"].is_array() || doc["targets"].empty())
    throw Error("no targets in the file (expected a targets.json of target-pick)", path);
  for (const auto& t : doc["targets"]) {
    if (!t.contains("name") || !t["name"].is_string()) throw Error("a target has no name", path);
    names.push_back(t["name"].get<std::string>());
  }
  return names;
}

std::vector<std::pair<std::string, std::string>> output_names(const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, std::string>> out = {{"targets", "targets_efield.json"},
                                                          {"record", "efield.json"}};
  for (const auto& n : names) {
    const std::string s = safe_name(n);
    out.emplace_back("surface:" + n, "efield_" + s + ".func.gii");
    out.emplace_back("volume:" + n, "efield_" + s + ".nii.gz");
    out.emplace_back("qc:" + n, "efield_" + s + "_qc.png");
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> output_names(const Params& params) {
  return output_names(target_names(params.targets.empty() ? params.subject_dir + "/targets.json" : params.targets));
}

// Defined in outputs.cpp.
void write_surface_field(const std::string& path, const Mesh& pial, const std::vector<int>& vertices,
                         const Eigen::Matrix3Xd& e, const Eigen::Matrix3Xd& normals, bool force);
using PointsField = std::function<Eigen::Matrix3Xd(const Eigen::Matrix3Xd&)>;
void write_volume_field(const std::string& path, const Grid& grid, const Mask& brain, const Eigen::Vector3d& target,
                        double radius, const PointsField& field, bool force);
void write_field_picture(const std::string& path, const Mesh& pial, const std::vector<int>& vertices,
                         const Eigen::VectorXd& values, const Eigen::Matrix4d& pose, const Coil& coil,
                         const Eigen::Vector3d& target, const Eigen::Matrix4d& rule_pose, bool force);

namespace {

// What every target shares: the plan, the coil, the subject's surfaces and the conductor.
struct Setup {
  std::string targets_path;
  nlohmann::json doc;  // targets.json as read
  std::vector<Target> targets;
  double hair = 4.0;
  Coil coil;
  double didt = 0;
  Mask brain, head;
  Mesh pial;
  std::vector<Eigen::Vector3d> pial_normals;
  std::unique_ptr<targets::Scalp> scalp;
  Mesh conductor;
  std::unique_ptr<BemModel> bem;
  double setup_s = 0;
};

void check_params(const Params& p) {
  if (p.objective != "normal" && p.objective != "magnitude")
    throw UsageError("--objective must be normal or magnitude");
  if (p.model != "bem" && p.model != "sphere") throw UsageError("--model must be bem or sphere");
  if (p.orientation != "field" && p.orientation != "rule") throw UsageError("--orientation must be field or rule");
  if (p.dose_objective != "normal" && p.dose_objective != "magnitude")
    throw UsageError("--dose-objective must be normal or magnitude");
}

Setup set_up(const Params& p, Record& record) {
  Setup su;
  const std::string dir = p.subject_dir;
  su.targets_path = p.targets.empty() ? dir + "/targets.json" : p.targets;
  su.doc = detail::read_json(su.targets_path);
  su.targets = read_targets(su.doc, su.targets_path);
  su.hair = su.doc.value("hair_offset_mm", 4.0);
  su.coil = load_coil(p.coil);
  su.didt = p.didt ? *p.didt : su.coil.didt_max_a_per_us.value_or(0.0);
  record.add_inputs({{"targets", su.targets_path},
                     {"brain_mask", dir + "/brain_mask.nii.gz"},
                     {"head_mask", dir + "/head_mask.nii.gz"},
                     {"pial", dir + "/pial.surf.gii"}});
  if (!su.coil.file.empty()) record.add_input("coil", su.coil.file);
  double t0 = now_seconds();
  su.brain = read_mask(dir + "/brain_mask.nii.gz");
  su.head = read_mask(dir + "/head_mask.nii.gz", &su.brain.grid);
  su.pial = read_gifti(dir + "/pial.surf.gii");
  su.pial_normals = smooth_vertex_normals(su.pial, vertex_normals(su.pial), p.normal_smoothing_mm);
  su.scalp = std::make_unique<targets::Scalp>(su.head);
  // The conductor: needed by both models (the sphere is fitted to it under the coil).
  ConductorOptions co;
  co.offset_mm = p.conductor_offset_mm;
  su.conductor = conductor_surface(su.brain, co);
  const MeshSummary cs = summarize(su.conductor);
  if (!cs.closed_manifold || cs.self_intersections != 0)
    throw Error(fmt::format("the conductor surface is not closed and free of self-intersections ({} intersections)",
                            cs.self_intersections));
  if (p.model == "bem") su.bem = std::make_unique<BemModel>(su.conductor);
  su.setup_s = now_seconds() - t0;
  log::info(fmt::format("conductor {} triangles, set-up {:.1f} s", su.conductor.triangles.size(), su.setup_s));
  return su;
}

// One target's search and the figures around it.
struct Result {
  Target t;
  Roi roi;
  SphereModel sphere{Eigen::Vector3d::Zero()};
  std::string sphere_fit;
  Search s;
  Figures rule, rule_other, chosen_other;
};

// The locally fitted sphere: conductor vertices within 40 mm of the conductor point nearest to
// the scalp entry. A patch that does not look like the inside of a head from the coil (centre on
// the coil's side, radius outside 40..200 mm) falls back to the sphere of the whole surface.
void fit_local_sphere(const Mesh& conductor, const Target& t, Result& r) {
  Eigen::Vector3d hit = conductor.vertices.front();
  for (const auto& v : conductor.vertices)
    if ((v - t.scalp).squaredNorm() < (hit - t.scalp).squaredNorm()) hit = v;
  std::vector<Eigen::Vector3d> near;
  for (const auto& v : conductor.vertices)
    if ((v - hit).norm() <= 40.0) near.push_back(v);
  r.sphere = fit_sphere(near);
  r.sphere_fit = "local (conductor within 40 mm of the entry)";
  const Eigen::Vector3d zc = t.rule_pose.block<3, 1>(0, 2);
  if (!(r.sphere.radius() >= 40 && r.sphere.radius() <= 200 && (r.sphere.centre() - hit).dot(zc) > 0)) {
    r.sphere = fit_sphere(conductor.vertices);
    r.sphere_fit = "whole conductor surface (the local fit was not head-like)";
    log::warn(fmt::format(
        "{}: the local sphere fit was not head-like; the sphere of the whole conductor surface is used", t.name));
  }
}

Result evaluate_target(const Params& p, const Setup& su, const Target& t) {
  const double ts = now_seconds();
  Result r{t,
           make_roi(su.pial, su.pial_normals, t.cortical, p.roi_radius_mm),
           SphereModel(Eigen::Vector3d::Zero()),
           {},
           {},
           {},
           {},
           {}};
  fit_local_sphere(su.conductor, t, r);
  const FieldModel& model = su.bem ? static_cast<const FieldModel&>(*su.bem) : static_cast<const FieldModel&>(r.sphere);
  const FieldModel& other = static_cast<const FieldModel&>(r.sphere);
  // Geometry checks on the rule's pose: the coil outside the head, the ROI inside the conductor.
  const Dipoles d_rule = place(su.coil, t.rule_pose);
  for (Eigen::Index k = 0; k < d_rule.position_mm.cols(); ++k)
    if (su.scalp->inside_level(d_rule.position_mm.col(k)) > 0.5)
      throw Error(fmt::format(
          "target {}: the coil at the planned pose reaches into the head (dipole {} at {:.1f}, {:.1f}, {:.1f})", t.name,
          k + 1, d_rule.position_mm(0, k), d_rule.position_mm(1, k), d_rule.position_mm(2, k)));
  try {
    model.check_geometry(d_rule, r.roi.points);
  } catch (const Error& e) {
    throw Error("target " + t.name + ": " + e.what());
  }
  const Evaluator eval(model, r.roi.points, r.roi.normals, p.objective == "magnitude");
  r.s = search(t, su.coil, eval, candidate_maker(t, *su.scalp, su.hair), p, d_rule, r.rule);
  // The other model at both poses (sphere beside BEM).
  const Evaluator eval_other(other, r.roi.points, r.roi.normals, p.objective == "magnitude");
  r.rule_other = eval_other(d_rule);
  r.chosen_other = eval_other(place(su.coil, r.s.pose));
  log::info(fmt::format("{}: {} poses in {:.2f} s; handle {:.0f} deg (rule {:.0f}), objective {:.3f} (rule {:.3f})",
                        t.name, r.s.poses, now_seconds() - ts, r.s.angle, t.rule_angle, r.s.figures.objective,
                        r.rule.objective));
  return r;
}

// The target whose field the RMT matches (with --rmt): --reference-target, else the first motor one.
const Result* dose_reference(const Params& p, const std::vector<Result>& results, const std::string& targets_path) {
  if (!p.rmt) return nullptr;
  for (const auto& r : results)
    if (p.reference_target.empty() ? r.t.kind == "motor" : r.t.name == p.reference_target) return &r;
  throw Error(p.reference_target.empty() ? "--rmt needs a motor (M1) target in the plan or --reference-target NAME"
                                         : "--reference-target " + p.reference_target + " is not a target of the plan",
              targets_path);
}

// E-field dose: I_target = RMT x E_reference / E_target (Caulfield et al. 2021), beside Stokes'.
// Both ROI statistics are given; --dose-objective names the one that sets the dose.
nlohmann::json efield_dose(const Params& p, const Setup& su, const Result& r, const Result& ref, const Figures& cf,
                           std::vector<std::string>& strict_problems) {
  const Figures& rf = p.orientation == "field" ? ref.s.figures : ref.rule;
  auto ratio_of = [&](bool magnitude) {
    if (ref.t.name == r.t.name) return 1.0;
    return rf.statistic(magnitude) / cf.statistic(magnitude);
  };
  const bool by_magnitude = p.dose_objective == "magnitude";
  const double ratio = ratio_of(by_magnitude), other = ratio_of(!by_magnitude);
  const double dose = *p.rmt * ratio;
  const double stokes = protocol::adjust_for_depth(*p.rmt, r.t.depth_mm, ref.t.depth_mm).mt_target_pct_mso;
  auto pct = [](double x) { return std::round(x * 1000) / 10; };
  nlohmann::json dj = {
      {"rmt_pct_mso", *p.rmt},
      {"reference_target", ref.t.name},
      {"objective", Figures::statistic_name(by_magnitude)},
      {"efield_pct_mso", std::round(dose * 10) / 10},
      {"efield_pct_rmt", pct(ratio)},
      {"pct_rmt_by_objective",
       {{Figures::statistic_name(true), pct(ratio_of(true))}, {Figures::statistic_name(false), pct(ratio_of(false))}}},
      {"stokes_pct_mso", std::round(stokes * 10) / 10},
      {"rule", "I_target = RMT x E_reference / E_target, same objective and model at both (Caulfield et al. 2021)"}};
  if (su.didt > 0) dj["target_v_per_m"] = std::round(dose / 100 * su.didt * cf.statistic(by_magnitude) * 10) / 10;
  nlohmann::json notes = nlohmann::json::array();
  if (std::abs(other / ratio - 1) > 0.25)
    notes.push_back(fmt::format("the dose by the {} would be {:.0f} % RMT, not {:.0f} %: the two ROI statistics "
                                "disagree here by more than 25 %",
                                by_magnitude ? "normal component" : "magnitude", 100 * other, 100 * ratio));
  dj["notes"] = notes;
  nlohmann::json warnings = nlohmann::json::array();
  if (dose > p.max_intensity) {
    warnings.push_back(fmt::format("E-field dose {:.0f} % MSO is above {:.0f} % MSO: the stimulator cannot deliver it",
                                   dose, p.max_intensity));
    strict_problems.push_back(r.t.name + ": " + warnings.back().get<std::string>());
  }
  dj["warnings"] = warnings;
  return dj;
}

// One target's efield block of targets_efield.json.
nlohmann::json efield_block(const Params& p, const Setup& su, const Result& r, const Result* ref,
                            std::vector<std::string>& strict_problems) {
  const Figures& cf = p.orientation == "field" ? r.s.figures : r.rule;
  const Coil& coil = su.coil;
  const double didt = su.didt;
  nlohmann::json e;
  e["model"] = p.model;
  e["model_detail"] = su.bem ? su.bem->describe() : r.sphere.describe();
  e["sphere"] = r.sphere.describe();
  e["sphere"]["fitted_to"] = r.sphere_fit;
  e["coil"] = {{"name", coil.name}, {"source", coil.source}, {"dipoles", coil.size()}};
  if (coil.didt_max_a_per_us) e["coil"]["didt_max_a_per_us"] = *coil.didt_max_a_per_us;
  if (!coil.stimulator.empty()) e["coil"]["stimulator"] = coil.stimulator;
  e["units"] = "V/m per A/us of coil current slope (multiply by the stimulator's dI/dt at the intensity used)";
  e["didt_a_per_us_at_100pct_mso"] = didt > 0 ? nlohmann::json(didt) : nlohmann::json(nullptr);
  e["objective"] = Figures::statistic_name(p.objective == "magnitude");
  e["roi_radius_mm"] = p.roi_radius_mm;
  e["roi_vertices"] = r.roi.vertices.size();
  e["normal_smoothing_mm"] = p.normal_smoothing_mm;
  e["orientation"] = p.orientation;
  e["objective_flat"] = r.s.flat;
  e["poses_evaluated"] = r.s.poses;
  e["rule"] = {{"handle_angle_deg", r.t.rule_angle},
               {"coil_pose_ras", mat4_to_json(r.t.rule_pose)},
               {"field", r.rule.to_json(didt)},
               {"field_other_model", r.rule_other.to_json(didt)}};
  e["optimised"] = {{"handle_angle_deg", r.s.angle},
                    {"angle_from_rule_deg", r.s.angle - r.t.rule_angle},
                    {"centre_shift_mm", std::round(r.s.shift_mm * 100) / 100},
                    {"coil_pose_ras", mat4_to_json(r.s.pose)},
                    {"field", r.s.figures.to_json(didt)},
                    {"field_other_model", r.chosen_other.to_json(didt)}};
  e["other_model"] = "sphere";
  nlohmann::json profile = nlohmann::json::array();
  for (const auto& [a, v] : r.s.angle_profile) profile.push_back({a, r4(v)});
  e["angle_profile"] = profile;
  if (ref) e["dose"] = efield_dose(p, su, r, *ref, cf, strict_problems);
  return e;
}

// targets_efield.json: targets.json with an efield block per target and, with --orientation
// field, the field's coil pose. Returns the record's per-target figures.
nlohmann::json targets_document(const Params& p, const Setup& su, const std::vector<Result>& results,
                                nlohmann::json& outdoc) {
  const Result* ref = dose_reference(p, results, su.targets_path);
  outdoc = su.doc;
  nlohmann::json fig = nlohmann::json::array();
  std::vector<std::string> strict_problems;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    outdoc["targets"][i]["efield"] = efield_block(p, su, r, ref, strict_problems);
    if (p.orientation == "field") {
      const Eigen::Matrix4d& chosen = r.s.pose;
      auto& tj = outdoc["targets"][i];
      tj["coil_pose_ras"] = mat4_to_json(chosen);
      tj["coil_centre_ras"] = vec3_to_json(chosen.block<3, 1>(0, 3));
      tj["handle_direction_ras"] = vec3_to_json(chosen.block<3, 1>(0, 1));
      tj["handle_angle_deg"] = r.s.angle;
      tj["handle_rule"] = fmt::format(
          "turned by the induced field ({} objective, {} model): handle {:.0f} degrees from posterior toward lateral",
          p.objective, p.model, r.s.angle);
    }
    fig.push_back({{"target", r.t.name},
                   {"handle_angle_deg", r.s.angle},
                   {"rule_angle_deg", r.t.rule_angle},
                   {"objective_optimised", r4(r.s.figures.objective)},
                   {"objective_rule", r4(r.rule.objective)},
                   {"poses", r.s.poses}});
  }
  if (p.strict && !strict_problems.empty()) throw Error("refused under --strict: " + strict_problems.front());
  outdoc["efield_step"] = {
      {"tool", "efield"},
      {"note", "coil poses chosen by the induced field; the rule's poses are kept in each target's efield.rule"}};
  return fig;
}

// The maps' primary field sees a cluster of coil dipoles as one dipole beyond this many of its
// radii: within 1.4e-4 of the peak on the Philips maps (docs/efield.md), a fraction of the CPU.
constexpr double kMapClusterFar = 16.0;

// The pose whose field the maps show.
Eigen::Matrix4d map_pose(const Params& p, const Result& r) {
  return p.orientation == "field" ? r.s.pose : r.t.rule_pose;
}

// Field maps and pictures at the chosen pose; `charges`: its boundary-element charges (BEM only).
void write_field_maps(const Params& p, const Setup& su, const Result& r, const Eigen::VectorXd& charges,
                      const OutputSet& out) {
  const Eigen::Matrix4d chosen = map_pose(p, r);
  const Dipoles d = place(su.coil, chosen);
  const PointsField field = [&](const Eigen::Matrix3Xd& pts) {
    return su.bem ? su.bem->field(d, charges, pts, kMapClusterFar) : r.sphere.field(d, pts);
  };
  std::vector<int> near;
  for (std::size_t v = 0; v < su.pial.vertices.size(); ++v)
    if ((su.pial.vertices[v] - r.t.cortical).norm() <= 40.0) near.push_back(static_cast<int>(v));
  Eigen::Matrix3Xd pts(3, static_cast<Eigen::Index>(near.size())), nrm(3, static_cast<Eigen::Index>(near.size()));
  for (std::size_t i = 0; i < near.size(); ++i) {
    pts.col(static_cast<Eigen::Index>(i)) = su.pial.vertices[static_cast<std::size_t>(near[i])];
    nrm.col(static_cast<Eigen::Index>(i)) = -su.pial_normals[static_cast<std::size_t>(near[i])];
  }
  const Eigen::Matrix3Xd e = field(pts);
  write_surface_field(out.path("surface:" + r.t.name), su.pial, near, e, nrm, out.force());
  write_volume_field(out.path("volume:" + r.t.name), su.brain.grid, su.brain, r.t.cortical, 40.0, field, out.force());
  Eigen::VectorXd mag(e.cols());
  for (Eigen::Index i = 0; i < e.cols(); ++i) mag[i] = e.col(i).norm();
  write_field_picture(out.path("qc:" + r.t.name), su.pial, near, mag, chosen, su.coil, r.t.cortical, r.t.rule_pose,
                      out.force());
}

}  // namespace

void run(const Params& p, OutputSet& out, Record& record) {
  check_params(p);
  const Setup su = set_up(p, record);
  std::vector<Result> results;
  for (const Target& t : su.targets) results.push_back(evaluate_target(p, su, t));
  nlohmann::json outdoc;
  const nlohmann::json fig = targets_document(p, su, results, outdoc);
  // Every target's map pose in one boundary-element solve.
  Eigen::MatrixXd charges;
  if (su.bem) {
    std::vector<Dipoles> poses;
    for (const Result& r : results) poses.push_back(place(su.coil, map_pose(p, r)));
    charges = su.bem->charges(poses);
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    const double t0 = now_seconds();
    write_field_maps(p, su, r, su.bem ? Eigen::VectorXd(charges.col(static_cast<Eigen::Index>(i))) : Eigen::VectorXd(),
                     out);
    log::debug(fmt::format("{}: field maps in {:.2f} s", r.t.name, now_seconds() - t0));
  }
  write_file_atomic(out.path("targets"), outdoc.dump(1) + "\n", out.force());
  record.parameters() = {{"coil", p.coil},
                         {"model", p.model},
                         {"objective", p.objective},
                         {"orientation", p.orientation},
                         {"roi_radius_mm", p.roi_radius_mm},
                         {"normal_smoothing_mm", p.normal_smoothing_mm},
                         {"dose_objective", p.dose_objective},
                         {"search_radius_mm", p.search_radius_mm},
                         {"angle_step_deg", p.angle_step_deg},
                         {"didt_a_per_us", su.didt},
                         {"monophasic", p.monophasic},
                         {"strict", p.strict},
                         {"conductor_offset_mm", p.conductor_offset_mm}};
  if (p.rmt) record.parameters()["rmt_pct_mso"] = *p.rmt;
  record.figures() = {
      {"targets", fig},
      {"setup_seconds", std::round(su.setup_s * 100) / 100},
      {"conductor", su.bem ? su.bem->describe() : nlohmann::json{{"triangles", su.conductor.triangles.size()}}}};
  for (const auto& [role, path] : out.all())
    if (role != "record") record.add_output(role, path);
}

}  // namespace tmsplan::efield
