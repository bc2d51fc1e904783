// The cortex-map step: subject <-> MNI registration, template atlases in the subject, surfaces and
// cortical maps, with the record's figures. tools/cortex-map declares the command line. A step
// above registration, surface and report (it uses all three).
//
// The work runs on the working grid (include/tmsplan/working_grid.hpp: the T1's own grid when it
// is about 1 mm, otherwise a near-1 mm grid on its axes); the images users load (atlases, maps)
// are written on the T1's grid, the surfaces and transforms are in world coordinates.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "tmsplan/cortex_map.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/surface.hpp"
#include "tmsplan/transform_io.hpp"
#include "tmsplan/working_grid.hpp"

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
constexpr const char* kGmRestriction = "grey matter (dseg == 2) dilated by 1 voxel";
constexpr const char* kBrainRestriction = "brain mask";

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
  std::array<double, 3> c{quantile(t1, 0.1, &brain), quantile(t1, 0.5, &brain), quantile(t1, 0.9, &brain)};
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

// An atlas's labels (1..255) where `within` is set; the labels present.
template <class T> Labels restrict_labels(const Volume<T>& warped, const Mask& within, std::set<int>& present) {
  Labels labels(warped.grid, 0);
  for (std::size_t i = 0; i < warped.data.size(); ++i) {
    const long v = std::lround(warped.data[i]);
    if (!within.data[i] || v <= 0 || v > 255) continue;
    labels.data[i] = static_cast<std::uint8_t>(v);
    present.insert(int(v));
  }
  return labels;
}
// The same everywhere.
Labels restrict_labels(const Image& warped) {
  Labels labels(warped.grid, 0);
  for (std::size_t i = 0; i < warped.data.size(); ++i) {
    const long v = std::lround(warped.data[i]);
    if (v > 0 && v <= 255) labels.data[i] = static_cast<std::uint8_t>(v);
  }
  return labels;
}

std::map<int, std::string> label_names(const SubjectAtlas& a, const std::set<int>& present) {
  std::map<int, std::string> file_names, names;
  const std::string stem = a.source.substr(0, a.source.size() - 3);  // "x.nii.gz" -> "x.nii"
  if (std::filesystem::exists(stem + ".txt")) file_names = read_label_names(stem + ".txt");
  for (int v : present) {
    if (a.key == "brodmann") {
      names[v] = "BA" + std::to_string(v);
    } else {
      const auto it = file_names.find(v);
      names[v] = it != file_names.end() ? it->second : std::to_string(v);
    }
  }
  return names;
}

nlohmann::json stats_json(const RegionStats& s) {
  auto num = [](double v) {
    return std::isfinite(v) ? nlohmann::json(std::round(v * 100.0) / 100.0) : nlohmann::json();
  };
  return {
      {"voxels", s.count}, {"mean", num(s.mean)}, {"median", num(s.median)}, {"min", num(s.min)}, {"max", num(s.max)}};
}

double r2(double v) { return std::round(v * 100.0) / 100.0; }
double r3(double v) { return std::round(v * 1000.0) / 1000.0; }

// Seconds per stage, for the record.
struct Laps {
  nlohmann::json seconds;
  double t = now_seconds();
  void operator()(const char* stage) {
    const double now = now_seconds();
    seconds[stage] = r2(now - t);
    log::debug(fmt::format("cortex-map: {} {:.2f} s", stage, now - t));
    t = now;
  }
};

// The inputs on the T1's grid, checked; the template with its brain.
struct Inputs {
  Image t1;
  Mask brain, head;
  Labels dseg;
  Image templ;
  Mask templ_brain;
};

Inputs read_inputs(const Params& p, Record& record) {
  // The atlases are read late: check they exist before any work (a missing one must not stop the
  // run half-way).
  for (const auto& spec : kAtlases) check_input_path(p.atlas_dir + "/" + spec.file);
  Inputs in;
  std::vector<std::pair<std::string, std::string>> roles;
  for (const auto& [role, path] :
       std::vector<std::pair<std::string, std::string>>{{"t1", p.t1},
                                                        {"brain_mask", p.brain},
                                                        {"head_mask", p.head},
                                                        {"dseg", p.dseg},
                                                        {"template", p.template_head},
                                                        {"template_brain", p.template_brain}})
    if (!path.empty()) roles.push_back({role, path});
  // Two halves read side by side (the T1 with its masks; the segmentation, the template and the
  // input hashes); parallel_tasks rethrows the earlier half's error first, as a serial read would.
  Image d;
  parallel_tasks({[&] {
                    in.t1 = read_image(p.t1);
                    in.brain = read_mask(p.brain, &in.t1.grid);
                    in.head = read_mask(p.head, &in.t1.grid);
                  },
                  [&] {
                    if (!p.dseg.empty()) {
                      ReadOptions ro;
                      ro.refuse_constant = false;
                      d = read_image(p.dseg, ro);
                    }
                    in.templ = read_image(p.template_head);
                    in.templ_brain = read_mask(p.template_brain, &in.templ.grid);
                    record.add_inputs(roles);
                  }});
  if (!p.dseg.empty()) {
    if (!d.grid.same_as(in.t1.grid, 1e-2))
      throw Error("segmentation is not on the grid of the T1 (dimensions or world position differ)", p.dseg);
    in.dseg = Labels(d.grid, 0);
    for (std::size_t i = 0; i < d.data.size(); ++i)
      in.dseg.data[i] = static_cast<std::uint8_t>(std::clamp(std::lround(d.data[i]), 0L, 3L));
  } else {
    log::warn("no --dseg: grey and white matter approximated by three intensity classes inside the brain mask");
    in.dseg = intensity_classes(in.t1, in.brain);
  }
  return in;
}

// What the step works on: the inputs on the working grid, with grey and white matter. On a ~1 mm
// T1 the inputs themselves (moved, `same`); `input` keeps the T1's grid either way.
struct Work {
  bool same = true;
  Grid input;
  Image t1;
  Mask brain, head, gm, wm;
  Mask input_gm;  ///< grey matter on the T1's grid (empty when `same`: then it is `gm`)
  Mask input_brain;
};

Work working_copies(Inputs& in, const Params& p) {
  Work w;
  w.input = in.t1.grid;
  const Grid grid = workgrid::choose(in.t1.grid);
  w.same = workgrid::is_identity(in.t1.grid, grid);
  if (w.same) {
    w.t1 = std::move(in.t1);
    w.brain = std::move(in.brain);
    w.head = std::move(in.head);
    w.gm = label_mask(in.dseg, 2);
    w.wm = label_mask(in.dseg, 3);
  } else {
    log::info(fmt::format("working grid {}x{}x{} at {:.2f}x{:.2f}x{:.2f} mm", grid.dim[0], grid.dim[1], grid.dim[2],
                          grid.spacing_mm()[0], grid.spacing_mm()[1], grid.spacing_mm()[2]));
    w.t1 = workgrid::to_work(in.t1, grid);
    w.brain = workgrid::mask_to_work(in.brain, grid);
    w.head = workgrid::mask_to_work(in.head, grid);
    const Labels dseg = workgrid::labels_to_work(in.dseg, grid);
    w.gm = label_mask(dseg, 2);
    w.wm = label_mask(dseg, 3);
    w.input_gm = label_mask(in.dseg, 2);
    w.input_brain = std::move(in.brain);
    in.t1 = Image();
  }
  in.dseg = Labels();
  if (count(w.gm) == 0) throw Error("segmentation has no grey matter (label 2)", p.dseg);
  if (count(w.wm) == 0) throw Error("segmentation has no white matter (label 3)", p.dseg);
  return w;
}

// The brain carried into MNI (written); returns its Dice against the template brain.
double write_brain_mni(const MniMap& map, const Work& w, const Inputs& in, const OutputSet& out) {
  const Mask brain_mni =
      threshold(map.subject_to_template_image(to_image(w.brain), in.templ.grid, Interp::Linear), 0.5f);
  WriteOptions wo_mni;
  wo_mni.force = out.force();
  wo_mni.description = "tmsplan cortex-map";
  wo_mni.frame = Frame::Mni;
  write_mask(out.path("brain_mni"), brain_mni, wo_mni);
  return dice(brain_mni, in.templ_brain);
}

// The atlases on the working grid (returned, for the maps and the QC) and written on the T1's
// grid with atlases.json. On another grid than the T1's, the warped labels come to the T1's grid by
// nearest neighbour (they are the template's 1 mm lattice either way) and are restricted there.
std::vector<SubjectAtlas> write_atlases(const MniMap& map, const Work& w, const std::string& atlas_dir,
                                        const OutputSet& out, const WriteOptions& wo) {
  if (w.same) {
    const std::vector<SubjectAtlas> atlases = warp_atlases(map, w.t1.grid, atlas_dir, w.gm, w.brain);
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
    write_file_atomic(out.path("atlases"), atlas_json.dump(2) + "\n", out.force());
    return atlases;
  }
  const Mask gm_dilated = dilate_box(w.gm, 1), input_gm_dilated = dilate_box(w.input_gm, 1);
  // Only where an input voxel's nearest working voxel can lie (the restrictions hold on the input
  // grid: brain, or grey matter dilated by one voxel, both within the brain grown by 2 voxels).
  const Mask reach = mask_or(dilate_box(w.brain, 2), gm_dilated);
  std::vector<SubjectAtlas> atlases;
  nlohmann::json atlas_json = nlohmann::json::object();
  for (const auto& spec : kAtlases) {
    SubjectAtlas a;
    a.key = spec.key;
    a.source = atlas_dir + "/" + spec.file;
    a.restriction = spec.gm_only ? kGmRestriction : kBrainRestriction;
    ReadOptions ro;
    ro.refuse_constant = false;
    const Image warped =
        map.template_to_subject_image(read_image(a.source, ro), w.t1.grid, Interp::Nearest, 0.0f, &reach);
    std::set<int> present_work, present;
    a.labels = restrict_labels(warped, spec.gm_only ? gm_dilated : w.brain, present_work);
    const Labels on_input = restrict_labels(workgrid::labels_to_input_nearest(restrict_labels(warped), w.input),
                                            spec.gm_only ? input_gm_dilated : w.input_brain, present);
    write_mask(out.path("atlas_" + a.key), on_input, wo);
    nlohmann::json names = nlohmann::json::object();
    for (const auto& [v, n] : label_names(a, present)) names[std::to_string(v)] = n;
    atlas_json[a.key] = {{"file", std::filesystem::path(out.path("atlas_" + a.key)).filename().string()},
                         {"source", a.source},
                         {"restricted_to", a.restriction},
                         {"labels", names}};
    a.names = label_names(a, present_work);  // for the region figures on the working grid
    atlases.push_back(std::move(a));
  }
  write_file_atomic(out.path("atlases"), atlas_json.dump(2) + "\n", out.force());
  return atlases;
}

struct Surfaces {
  MeshReport scalp_report, pial_report, white_report;
  Mesh scalp, pial, white;
  Image scalp_distance, depth;  ///< on the working grid
};

// Runs named tasks with parallel_tasks (a static split in list order over the threads; each
// task's result does not depend on where it runs) and notes each one's seconds in `seconds`.
void timed_tasks(const std::vector<std::pair<const char*, std::function<void()>>>& tasks, nlohmann::json& seconds) {
  std::vector<double> took(tasks.size(), 0.0);
  std::vector<std::function<void()>> run;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    run.push_back([&, i] {
      const double t0 = now_seconds();
      tasks[i].second();
      took[i] = now_seconds() - t0;
      log::debug(fmt::format("cortex-map: {} {:.2f} s", tasks[i].first, took[i]));
    });
  parallel_tasks(run);
  for (std::size_t i = 0; i < tasks.size(); ++i) seconds[tasks[i].first] = r2(took[i]);
}

// Per-region summaries of the two maps over each atlas's labels (working grid).
nlohmann::json region_figures(const std::vector<SubjectAtlas>& atlases, const Surfaces& s, const Mask& gm) {
  nlohmann::json regions = nlohmann::json::object();
  for (const auto& a : atlases) {
    const auto dist = region_summary(s.scalp_distance, a.labels, {}, &gm);
    const auto dep = region_summary(s.depth, a.labels, {}, &gm);
    for (std::size_t i = 0; i < dist.size(); ++i) {
      const auto it = a.names.find(dist[i].label);
      const std::string name = it != a.names.end() ? it->second : std::to_string(dist[i].label);
      regions[a.key][name] = {
          {"label", dist[i].label}, {"scalp_distance_mm", stats_json(dist[i])}, {"gyral_depth_mm", stats_json(dep[i])}};
    }
  }
  return regions;
}

// Distance (mm) from a point to the nearest grey-matter voxel centre (trilinear in the distance
// map). The map is made on a box of +-20 mm around the point when the answer lies well within it
// (then it is the whole volume's), else on the whole volume.
float distance_to_gm(const Mask& gm, const Eigen::Vector3d& point) {
  const Eigen::Vector3d ijk = ras_to_voxel(gm.grid.vox2ras, RasPoint(point)).v;
  const Eigen::Vector3d sp = gm.grid.spacing_mm();
  const double margin_mm = 20.0;
  Crop box;
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  bool usable = true;
  for (int a = 0; a < 3; ++a) {
    const auto half = static_cast<std::int64_t>(std::ceil(margin_mm / sp[a]));
    const auto c = static_cast<std::int64_t>(std::floor(ijk[a]));
    const std::int64_t lo = std::max<std::int64_t>(0, c - half);
    const std::int64_t hi = std::min<std::int64_t>(gm.grid.dim[std::size_t(a)] - 1, c + 1 + half);
    usable = usable && hi >= lo;
    box.offset[std::size_t(a)] = lo;
    box.grid.dim[std::size_t(a)] = std::max<std::int64_t>(1, hi - lo + 1);
    shift(a, 3) = double(lo);
  }
  if (usable) {
    box.grid.vox2ras = RasMatrix(gm.grid.vox2ras.m * shift);
    const Eigen::Vector3d local =
        ijk - Eigen::Vector3d(double(box.offset[0]), double(box.offset[1]), double(box.offset[2]));
    const float d = sample(distance_to(crop(gm, box)), local, Interp::Linear, -1.0f);
    // Exact when each interpolation corner's nearest grey-matter voxel lies in the box: the
    // distance is 1-Lipschitz, so every corner is within d + one voxel diagonal of it.
    if (d >= 0.0f && double(d) + sp.norm() < margin_mm - sp.maxCoeff()) return d;
  }
  return sample(distance_to(gm), ijk, Interp::Linear, -1.0f);
}

// QC: the warped BA4 over the subject T1 through the M1 hand point; returns the point's distance
// to grey matter (mm).
float write_qc(const MniMap& map, const Work& w, const std::vector<SubjectAtlas>& atlases, const OutputSet& out) {
  const Eigen::Vector3d m1 = map.to_subject(kM1HandMni);
  // BA4 (red) should lie on the precentral gyrus: between BA6 (premotor, yellow) in front and
  // BA3/1/2 (postcentral, cyan) behind it; the white line is the grey matter's outer edge.
  QcFigure qc(w.t1, RasPoint(m1), 160.0, 0.5);
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
  qc.add_outline(mask_or(w.gm, w.wm), {255, 255, 255});
  qc.add_point(RasPoint(m1), {0, 255, 0}, 4);
  qc.write_png(out.path("qc"), out.force());
  return distance_to_gm(w.gm, m1);
}

// The surfaces and the two maps on the working grid (nothing written); the seconds of each.
void make_surfaces(const Work& w, Surfaces& s, nlohmann::json& seconds) {
  Laps laps;
  s.scalp = scalp_surface(w.head, &s.scalp_report);
  laps("scalp_surface");
  s.pial = pial_surface(w.gm, w.wm, &s.pial_report);
  laps("pial_surface");
  s.white = white_surface(w.wm, &s.white_report);
  laps("white_surface");
  s.scalp_distance = scalp_distance_map(w.head, w.gm);
  s.depth = gyral_depth_map(w.brain, w.gm);
  laps("distance_maps");
  for (const auto& [key, value] : laps.seconds.items()) seconds[key] = value;
}

// Everything after reading, in two phases of parallel tasks (each result is independent of where
// it is made, so the bytes do not depend on --threads):
// (1) the registration beside the surfaces and maps, which do not need it (the registration keeps
//     about one core busy: its affine stage, the images' set-up and the 4 mm level are mostly
//     serial); nothing is written in this phase. Then the first output (to_mni_affine.txt) is
//     committed alone: of two runs racing into one folder without --force, the one that commits it
//     first writes everything and the other refuses there, having written nothing.
// (2) the transform files, the brain in MNI, the atlases, and the files of the surfaces and maps.
// Peak memory (Philips, 1 mm): 724-756 MiB when the surfaces were made after the registration,
// 840-882 MiB now (in phase 2: the surfaces and maps are held while the from-MNI warp is written);
// the 0.4x0.4x1.5 mm copy 770 -> 927 MiB. An earlier overlap that also wrote in phase 1 peaked at
// ~1,150 MiB.
struct Outputs {
  DeformableResult reg;
  double dice_brain = 0.0;
  std::vector<SubjectAtlas> atlases;
  Surfaces s;
  nlohmann::json regions;  ///< region_figures
  float m1_gm_mm = 0.0f;   ///< the M1 hand point's distance to grey matter (write_qc)
};

Outputs make_outputs(const Params& p, const Work& w, const Inputs& in, const OutputSet& out, nlohmann::json& seconds) {
  Outputs o;
  const bool force = out.force();
  WriteOptions wo;
  wo.force = force;
  wo.description = "tmsplan cortex-map";
  auto write_map = [&](const std::string& role, const Image& image) {
    write_image(out.path(role), w.same ? image : workgrid::image_to_input(image, w.input), wo);
  };
  Surfaces& s = o.s;
  nlohmann::json surface_seconds;
  timed_tasks(
      {{"registration", [&] { o.reg = register_deformable(w.t1, w.brain, in.templ, in.templ_brain, p.registration); }},
       {"surfaces_and_maps", [&] { make_surfaces(w, s, surface_seconds); }}},
      seconds);
  for (const auto& [key, value] : surface_seconds.items()) seconds[key] = value;
  write_itk_affine(out.path("to_mni_affine"), o.reg.map.template_to_subject_affine(), force);
  // parallel_tasks splits the list in contiguous halves over two threads (CPU on the Philips
  // scan: the two warps and the maps ~ the atlases with the figures and QC that need them, the
  // brain in MNI and the surfaces). The two warps are written one after the other: each holds a
  // rounded copy of its field while it is written.
  const MniMap& map = o.reg.map;
  timed_tasks({{"write_transforms",
                [&] {
                  write_itk_affine(out.path("from_mni_affine"), map.subject_to_template_affine(), force);
                  write_displacement_field(out.path("from_mni_warp"), map.from_mni_warp(), Frame::Aligned, force);
                  write_displacement_field(out.path("to_mni_warp"), map.to_mni_warp(), Frame::Mni, force);
                }},
               {"write_maps",
                [&] {
                  write_map("scalp_cortex_distance", s.scalp_distance);
                  write_map("gyral_depth", s.depth);
                }},
               {"atlases_maps_qc",
                [&] {
                  o.atlases = write_atlases(map, w, p.atlas_dir, out, wo);
                  o.regions = region_figures(o.atlases, s, w.gm);
                  o.m1_gm_mm = write_qc(map, w, o.atlases, out);
                }},
               {"brain_mni_and_surfaces",
                [&] {
                  o.dice_brain = write_brain_mni(map, w, in, out);
                  write_gifti(out.path("pial_surface"), s.pial, force);
                  write_gifti(out.path("scalp_surface"), s.scalp, force);
                  write_gifti(out.path("white_surface"), s.white, force);
                }}},
              seconds);
  seconds["affine"] = r2(o.reg.seconds_affine);
  seconds["deformable"] = r2(o.reg.seconds_deformable);
  seconds["inverse"] = r2(o.reg.seconds_inverse);
  return o;
}

void fill_record(const Params& p, const DeformableResult& reg, double dice_brain, const Surfaces& s,
                 nlohmann::json regions, const Laps& laps, float m1_gm_mm, const Work& w, Record& record) {
  const Eigen::Vector3d m1 = reg.map.to_subject(kM1HandMni);
  record.parameters() = {{"template", p.template_head},
                         {"template_brain", p.template_brain},
                         {"atlas_dir", p.atlas_dir},
                         {"dseg", p.dseg.empty() ? "intensity classes (no --dseg)" : p.dseg},
                         {"levels_mm", p.registration.levels_mm},
                         {"iterations", p.registration.iterations},
                         {"ncc_radius_vox", p.registration.ncc_radius_vox},
                         {"sigma_update_vox", p.registration.sigma_update_vox},
                         {"min_sigma_update_mm", p.registration.min_sigma_update_mm},
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
                       {{"scalp", mesh_json(s.scalp, s.scalp_report)},
                        {"pial", mesh_json(s.pial, s.pial_report)},
                        {"white", mesh_json(s.white, s.white_report)}}},
                      {"regions", std::move(regions)},
                      {"seconds", laps.seconds},
                      {"peak_memory_mib", std::round(peak_memory_mib())}};
  if (!w.same) {
    const Eigen::Vector3d sp = w.t1.grid.spacing_mm();
    record.parameters()["working_spacing_mm"] = workgrid::kSpacingMm;
    record.figures()["working_grid"] = {{"dim", {w.t1.grid.dim[0], w.t1.grid.dim[1], w.t1.grid.dim[2]}},
                                        {"spacing_mm", {sp[0], sp[1], sp[2]}}};
  }
}

}  // namespace

std::vector<SubjectAtlas> warp_atlases(const MniMap& map, const Grid& subject_grid, const std::string& atlas_dir,
                                       const Mask& gm, const Mask& brain) {
  const Mask gm_dilated = dilate_box(gm, 1);
  std::vector<SubjectAtlas> out;
  for (const auto& spec : kAtlases) {
    SubjectAtlas a;
    a.key = spec.key;
    a.source = atlas_dir + "/" + spec.file;
    ReadOptions ro;
    ro.refuse_constant = false;
    const Image mni = read_image(a.source, ro);
    const Mask& within = spec.gm_only ? gm_dilated : brain;
    const Image warped = map.template_to_subject_image(mni, subject_grid, Interp::Nearest, 0.0f, &within);
    a.restriction = spec.gm_only ? kGmRestriction : kBrainRestriction;
    std::set<int> present;
    a.labels = restrict_labels(warped, within, present);
    a.names = label_names(a, present);
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
  Laps laps;
  Inputs in = read_inputs(p, record);
  const Work w = working_copies(in, p);
  laps("read");

  Outputs o = make_outputs(p, w, in, out, laps.seconds);
  laps("outputs");
  in = Inputs();

  fill_record(p, o.reg, o.dice_brain, o.s, std::move(o.regions), laps, o.m1_gm_mm, w, record);
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
