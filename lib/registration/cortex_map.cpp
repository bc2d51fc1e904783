// The cortex-map step: subject <-> MNI registration, template atlases in the subject, surfaces and
// cortical maps, with the record's figures. tools/cortex-map declares the command line.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pyramid.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/surface.hpp"
#include "tmsplan/warp.hpp"

namespace tmsplan::cortexmap {
namespace {

const Eigen::Vector3d kM1HandMni(-37, -21, 58);  // DESIGN.md 4 (Mayka 2006)

struct AtlasSpec {
  const char* key;
  const char* file;
  bool gm_only;
};
constexpr AtlasSpec kAtlases[] = {{"brodmann", "brodmann.nii.gz", true},
                                  {"aal", "aal.nii.gz", false},
                                  {"harvardoxford", "HarvardOxford-cort-maxprob-thr0-1mm.nii.gz", true}};

// "<n> <name> ..." lines of an atlas text file (aal.nii.txt).
std::map<int, std::string> read_label_names(const std::string& path) {
  std::map<int, std::string> names;
  std::istringstream in(read_file(path, 1u << 20));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    int label = 0;
    std::string name;
    if (ls >> label >> name) names[label] = name;
  }
  return names;
}

// Tissue classes when no segmentation is given: three intensity classes (k-means) in the brain.
Labels intensity_classes(const Image& t1, const Mask& brain) {
  std::vector<float> v;
  for (std::size_t i = 0; i < t1.data.size(); ++i)
    if (brain.data[i]) v.push_back(t1.data[i]);
  std::array<double, 3> c{registration_detail::quantile(v, 0.1), registration_detail::quantile(v, 0.5),
                          registration_detail::quantile(v, 0.9)};
  for (int it = 0; it < 20; ++it) {
    std::array<double, 3> sum{0, 0, 0}, n{0, 0, 0};
    for (float x : v) {
      const int k = std::abs(x - c[0]) < std::abs(x - c[1]) ? 0 : (std::abs(x - c[1]) < std::abs(x - c[2]) ? 1 : 2);
      sum[k] += x, n[k] += 1;
    }
    for (int k = 0; k < 3; ++k)
      if (n[k] > 0) c[k] = sum[k] / n[k];
  }
  Labels out(t1.grid, 0);
  for (std::size_t i = 0; i < t1.data.size(); ++i) {
    if (!brain.data[i]) continue;
    const double x = t1.data[i];
    out.data[i] = x < 0.5 * (c[0] + c[1]) ? 1 : x < 0.5 * (c[1] + c[2]) ? 2 : 3;
  }
  return out;
}

Mask label_mask(const Labels& labels, int value) {
  Mask m(labels.grid, 0);
  for (std::size_t i = 0; i < labels.data.size(); ++i) m.data[i] = labels.data[i] == value ? 1 : 0;
  return m;
}

nlohmann::json stats_json(const RegionStats& s) {
  auto num = [](double v) {
    return std::isfinite(v) ? nlohmann::json(std::round(v * 100.0) / 100.0) : nlohmann::json();
  };
  return {
      {"voxels", s.count}, {"mean", num(s.mean)}, {"median", num(s.median)}, {"min", num(s.min)}, {"max", num(s.max)}};
}

}  // namespace

std::vector<SubjectAtlas> warp_atlases(const MniMap& map, const Grid& subject_grid, const std::string& atlas_dir,
                                       const Mask& gm, const Mask& brain) {
  const Mask gm_dilated = registration_detail::dilate(gm, 1);
  std::vector<SubjectAtlas> out;
  for (const auto& spec : kAtlases) {
    SubjectAtlas a;
    a.key = spec.key;
    a.source = atlas_dir + "/" + spec.file;
    ReadOptions ro;
    ro.refuse_constant = false;
    const Image mni = read_image(a.source, ro);
    const Image warped = map.template_to_subject_image(mni, subject_grid, Interp::Nearest, 0.0f);
    const Mask& within = spec.gm_only ? gm_dilated : brain;
    a.restriction = spec.gm_only ? "grey matter (dseg == 2) dilated by 1 voxel" : "brain mask";
    a.labels = Labels(subject_grid, 0);
    std::set<int> present;
    for (std::size_t i = 0; i < warped.data.size(); ++i) {
      const long v = std::lround(warped.data[i]);
      if (!within.data[i] || v <= 0 || v > 255) continue;
      a.labels.data[i] = static_cast<std::uint8_t>(v);
      present.insert(int(v));
    }
    std::map<int, std::string> file_names;
    const std::string stem = a.source.substr(0, a.source.size() - 3);  // "x.nii.gz" -> "x.nii"
    if (std::filesystem::exists(stem + ".txt")) file_names = read_label_names(stem + ".txt");
    for (int v : present) {
      if (a.key == "brodmann") {
        a.names[v] = "BA" + std::to_string(v);
      } else {
        const auto it = file_names.find(v);
        a.names[v] = it != file_names.end() ? it->second : std::to_string(v);
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> output_names() {
  return {{"to_mni_affine", MniMap::kToMniAffine},
          {"to_mni_warp", MniMap::kToMniWarp},
          {"from_mni_affine", MniMap::kFromMniAffine},
          {"from_mni_warp", MniMap::kFromMniWarp},
          {"atlas_brodmann", "atlas_brodmann.nii.gz"},
          {"atlas_aal", "atlas_aal.nii.gz"},
          {"atlas_harvardoxford", "atlas_harvardoxford.nii.gz"},
          {"atlases", "atlases.json"},
          {"scalp_surface", "scalp.surf.gii"},
          {"pial_surface", "pial.surf.gii"},
          {"white_surface", "white.surf.gii"},
          {"scalp_cortex_distance", "scalp_cortex_distance.nii.gz"},
          {"gyral_depth", "gyral_depth.nii.gz"},
          {"brain_mni", "brain_mni.nii.gz"},
          {"qc", "cortex_map_qc.png"},
          {"record", "cortex_map.json"}};
}

void run(const Params& p, const OutputSet& out, Record& record) {
  const bool force = out.force();
  nlohmann::json seconds;
  double t = now_seconds();
  auto lap = [&](const char* stage) {
    const double now = now_seconds();
    seconds[stage] = std::round((now - t) * 100.0) / 100.0;
    t = now;
  };

  // Inputs: one grid for the subject, a template with its brain; the atlases are read late, so
  // check they exist before any work (a missing one must not stop the run half-way).
  for (const auto& spec : kAtlases) check_input_path(p.atlas_dir + "/" + spec.file);
  const Image t1 = read_image(p.t1);
  const Mask brain = read_mask(p.brain, &t1.grid);
  const Mask head = read_mask(p.head, &t1.grid);
  Labels dseg;
  if (!p.dseg.empty()) {
    ReadOptions ro;
    ro.refuse_constant = false;
    const Image d = read_image(p.dseg, ro);
    if (!d.grid.same_as(t1.grid, 1e-2))
      throw Error("segmentation is not on the grid of the T1 (dimensions or world position differ)", p.dseg);
    dseg = Labels(d.grid, 0);
    for (std::size_t i = 0; i < d.data.size(); ++i)
      dseg.data[i] = static_cast<std::uint8_t>(std::clamp(std::lround(d.data[i]), 0L, 3L));
  } else {
    log::warn("no --dseg: grey and white matter approximated by three intensity classes inside the brain mask");
    dseg = intensity_classes(t1, brain);
  }
  const Image templ = read_image(p.template_head);
  const Mask templ_brain = read_mask(p.template_brain, &templ.grid);
  const Mask gm = label_mask(dseg, 2), wm = label_mask(dseg, 3);
  if (count(gm) == 0) throw Error("segmentation has no grey matter (label 2)", p.dseg);
  if (count(wm) == 0) throw Error("segmentation has no white matter (label 3)", p.dseg);
  for (const auto& [role, path] :
       std::vector<std::pair<std::string, std::string>>{{"t1", p.t1},
                                                        {"brain_mask", p.brain},
                                                        {"head_mask", p.head},
                                                        {"dseg", p.dseg},
                                                        {"template", p.template_head},
                                                        {"template_brain", p.template_brain}})
    if (!path.empty()) record.add_input(role, path);
  lap("read");

  // Registration.
  const DeformableResult reg = register_deformable(t1, brain, templ, templ_brain, p.registration);
  seconds["affine"] = std::round(reg.seconds_affine * 100.0) / 100.0;
  seconds["deformable"] = std::round(reg.seconds_deformable * 100.0) / 100.0;
  seconds["inverse"] = std::round(reg.seconds_inverse * 100.0) / 100.0;
  t = now_seconds();
  const MniMap& map = reg.map;
  map.save(std::filesystem::path(out.path("to_mni_affine")).parent_path().string(), force);
  const Mask brain_mni = threshold(map.subject_to_template_image(to_image(brain), templ.grid, Interp::Linear), 0.5f);
  WriteOptions wo;
  wo.force = force;
  wo.description = "tmsplan cortex-map";
  WriteOptions wo_mni = wo;
  wo_mni.frame = Frame::Mni;
  write_mask(out.path("brain_mni"), brain_mni, wo_mni);
  const double dice_brain = dice(brain_mni, templ_brain);
  lap("write_transforms");

  // Atlases.
  const std::vector<SubjectAtlas> atlases = warp_atlases(map, t1.grid, p.atlas_dir, gm, brain);
  nlohmann::json atlas_json = nlohmann::json::object();
  for (const auto& a : atlases) {
    write_mask(out.path("atlas_" + a.key), a.labels, wo);
    nlohmann::json names = nlohmann::json::object();
    for (const auto& [v, n] : a.names) names[std::to_string(v)] = n;
    atlas_json[a.key] = {{"file", std::filesystem::path(out.path("atlas_" + a.key)).filename().string()},
                         {"source", a.source},
                         {"restricted_to", a.restriction},
                         {"labels", names}};
  }
  write_file_atomic(out.path("atlases"), atlas_json.dump(2) + "\n", force);
  lap("atlases");

  // Surfaces.
  // Surfaces and maps: independent, largely serial work (handle filling, distance transforms),
  // run as parallel tasks (each task's result does not depend on where it runs).
  MeshReport scalp_report, pial_report, white_report;
  Mesh scalp, pial, white;
  Image scalp_distance, depth;
  parallel_tasks({[&] {
                    scalp = scalp_surface(head, &scalp_report);
                    write_gifti(out.path("scalp_surface"), scalp, force);
                  },
                  [&] {
                    pial = pial_surface(gm, wm, &pial_report);
                    write_gifti(out.path("pial_surface"), pial, force);
                  },
                  [&] {
                    white = white_surface(wm, &white_report);
                    write_gifti(out.path("white_surface"), white, force);
                  },
                  [&] {
                    scalp_distance = scalp_distance_map(head, gm);
                    write_image(out.path("scalp_cortex_distance"), scalp_distance, wo);
                    depth = gyral_depth_map(brain, gm);
                    write_image(out.path("gyral_depth"), depth, wo);
                  }});
  lap("surfaces");

  // Per-region summaries.
  nlohmann::json regions = nlohmann::json::object();
  for (const auto& a : atlases) {
    const auto dist = region_summary(scalp_distance, a.labels, {}, &gm);
    const auto dep = region_summary(depth, a.labels, {}, &gm);
    for (std::size_t i = 0; i < dist.size(); ++i) {
      const auto it = a.names.find(dist[i].label);
      const std::string name = it != a.names.end() ? it->second : std::to_string(dist[i].label);
      regions[a.key][name] = {
          {"label", dist[i].label}, {"scalp_distance_mm", stats_json(dist[i])}, {"gyral_depth_mm", stats_json(dep[i])}};
    }
  }
  lap("maps");

  // QC: the warped BA4 over the subject T1 through the M1 hand point.
  const Eigen::Vector3d m1 = map.to_subject(kM1HandMni);
  // BA4 (red) should lie on the precentral gyrus: between BA6 (premotor, yellow) in front and
  // BA3/1/2 (postcentral, cyan) behind it; the white line is the grey matter's outer edge.
  QcFigure qc(t1, RasPoint(m1), 160.0, 0.5);
  for (const auto& a : atlases)
    if (a.key == "brodmann") {
      std::vector<Rgb> palette(49, Rgb{0, 0, 0});
      palette[4] = {255, 40, 40};
      palette[6] = {255, 220, 0};
      palette[1] = palette[2] = palette[3] = {0, 200, 255};
      Labels motor(a.labels.grid, 0);
      for (std::size_t i = 0; i < motor.data.size(); ++i) {
        const auto v = a.labels.data[i];
        motor.data[i] = (v == 1 || v == 2 || v == 3 || v == 4 || v == 6) ? v : 0;
      }
      qc.add_labels(motor, palette, 0.45);
    }
  qc.add_outline(mask_or(gm, wm), {255, 255, 255});
  qc.add_point(RasPoint(m1), {0, 255, 0}, 4);
  qc.write_png(out.path("qc"), force);
  const Image gm_distance = distance_to(gm);
  const float m1_gm_mm = sample(gm_distance, ras_to_voxel(t1.grid.vox2ras, RasPoint(m1)).v, Interp::Linear, -1.0f);
  lap("qc");

  auto r3 = [](double v) { return std::round(v * 1000.0) / 1000.0; };
  record.parameters() = {{"template", p.template_head},
                         {"template_brain", p.template_brain},
                         {"atlas_dir", p.atlas_dir},
                         {"dseg", p.dseg.empty() ? "intensity classes (no --dseg)" : p.dseg},
                         {"levels_mm", p.registration.levels_mm},
                         {"iterations", p.registration.iterations},
                         {"ncc_radius_vox", p.registration.ncc_radius_vox},
                         {"sigma_update_vox", p.registration.sigma_update_vox},
                         {"sigma_field_vox", p.registration.sigma_field_vox},
                         {"step_vox", p.registration.step_vox},
                         {"mask_margin_mm", p.registration.mask_margin_mm}};
  auto mesh_json = [](const Mesh& m, const MeshReport& r) {
    return nlohmann::json{{"vertices", m.vertices.size()}, {"triangles", m.triangles.size()}, {"euler", r.euler}};
  };
  record.figures() = {{"registration",
                       {{"ncc_brain_identity", r3(reg.ncc_identity)},
                        {"ncc_brain_affine", r3(reg.ncc_affine)},
                        {"ncc_brain_deformable", r3(reg.ncc_deformable)},
                        {"affine_similarity_before", r3(reg.affine.similarity_before)},
                        {"affine_similarity_after", r3(reg.affine.similarity_after)},
                        {"dice_brain_mni_vs_template_brain", r3(dice_brain)},
                        {"min_jacobian", r3(reg.min_jacobian)},
                        {"max_displacement_mm", r3(reg.max_displacement_mm)}}},
                      {"m1_hand",
                       {{"mni", {kM1HandMni[0], kM1HandMni[1], kM1HandMni[2]}},
                        {"subject_ras", {r3(m1[0]), r3(m1[1]), r3(m1[2])}},
                        {"distance_to_gm_mm", r3(m1_gm_mm)}}},
                      {"surfaces",
                       {{"scalp", mesh_json(scalp, scalp_report)},
                        {"pial", mesh_json(pial, pial_report)},
                        {"white", mesh_json(white, white_report)}}},
                      {"regions", regions},
                      {"seconds", seconds},
                      {"peak_memory_mib", std::round(peak_memory_mib())}};
  for (const auto& [role, path] : out.all())
    if (role != "record") record.add_output(role, path);
}

nlohmann::json map_point(const std::string& subject_dir, const Eigen::Vector3d& point, bool from_mni) {
  const MniMap map = MniMap::load(subject_dir);
  const Eigen::Vector3d q = from_mni ? map.to_subject(point) : map.to_mni(point);
  auto arr = [](const Eigen::Vector3d& v) {
    return nlohmann::json::array(
        {std::round(v[0] * 1e4) / 1e4, std::round(v[1] * 1e4) / 1e4, std::round(v[2] * 1e4) / 1e4});
  };
  return from_mni ? nlohmann::json{{"mni", arr(point)}, {"subject_ras", arr(q)}}
                  : nlohmann::json{{"subject_ras", arr(point)}, {"mni", arr(q)}};
}

}  // namespace tmsplan::cortexmap
