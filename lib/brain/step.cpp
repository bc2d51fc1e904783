// The skull-strip step (tools/skull-strip declares the command line): read, strip on the working
// grid, bring the results back to the T1's grid, write the images, the QC picture and the record.
#include <fmt/format.h>

#include <algorithm>

#include "tmsplan/brain.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/qc.hpp"

namespace tmsplan::brain {
namespace {

// skull_strip on the working grid; masks (smoothed indicator, no staircase) and the bias field
// (smooth: linear) back on the T1's grid, the T1 corrected there at its own resolution.
BrainResult strip_on_working_grid(const Image& t1, const Grid& work, const Params& p) {
  const BrainResult w = skull_strip(workgrid::to_work(t1, work), p.t1, p.options);
  BrainResult r;
  r.subject_to_template = w.subject_to_template;
  r.registration_similarity = w.registration_similarity;
  r.head = workgrid::mask_to_input(w.head, t1.grid);
  r.brain = mask_and(workgrid::mask_to_input(w.brain, t1.grid), r.head);
  r.bias_field = workgrid::image_to_input(w.bias_field, t1.grid);
  r.corrected = Image(t1.grid, 0.0f);
  parallel_for(std::int64_t(t1.data.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      r.corrected.data[std::size_t(i)] = t1.data[std::size_t(i)] / std::max(1e-3f, r.bias_field.data[std::size_t(i)]);
  });
  return r;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> output_names() {
  return {{"t1w_biascorr", "t1w_biascorr.nii.gz"},
          {"brain_mask", "brain_mask.nii.gz"},
          {"head_mask", "head_mask.nii.gz"},
          {"qc", "skull_strip_qc.png"},
          {"record", "skull_strip.json"}};
}

void run(const Params& p, const OutputSet& out, Record& record) {
  const bool force = out.force();
  record.add_input("t1", p.t1);
  ReadOptions ro;
  ro.series_uid = p.series;
  const Image t1 = read_image(p.t1, ro);
  log::info(fmt::format("read {} ({}x{}x{})", p.t1, t1.grid.dim[0], t1.grid.dim[1], t1.grid.dim[2]));
  const Grid work = workgrid::choose(t1.grid, p.working_spacing_mm);
  const bool same = workgrid::is_identity(t1.grid, work);
  if (!same)
    log::info(fmt::format("working grid {}x{}x{} at {:.2f}x{:.2f}x{:.2f} mm", work.dim[0], work.dim[1], work.dim[2],
                          work.spacing_mm()[0], work.spacing_mm()[1], work.spacing_mm()[2]));
  BrainResult result = same ? skull_strip(t1, p.t1, p.options) : strip_on_working_grid(t1, work, p);
  // A field of view that cuts through the brain (the top of the head often is cut on clinical
  // slabs): the plan goes on; target-pick warns on every target and refuses a coil on the cut.
  const double cut_ml = volume_on_faces_ml(result.brain);
  if (cut_ml > kBrainCutMl)
    log::warn(fmt::format("{}: the field of view cuts through the brain ({:.1f} ml of the brain mask lie on the "
                          "image's faces): targets near the cut are less reliable",
                          p.t1, cut_ml));

  WriteOptions wo;
  wo.force = force;
  wo.description = "tmsplan skull-strip";
  // One after the other, in the OutputSet's order: two runs racing into one folder then meet on
  // the same first file, so exactly one of them wins (tests/test_reliability.cpp, concurrent runs).
  write_image(out.path("t1w_biascorr"), result.corrected, wo);
  write_mask(out.path("brain_mask"), result.brain, wo);
  write_mask(out.path("head_mask"), result.head, wo);
  QcFigure qc(result.corrected, RasPoint(centroid_ras(result.brain)));
  qc.add_outline(result.head, {255, 200, 0});
  qc.add_outline(result.brain, {0, 220, 80});
  qc.write_png(out.path("qc"), force);

  record.parameters() = {{"template_head", p.options.template_head}, {"template_brain", p.options.template_brain}};
  record.figures() = {{"brain_volume_ml", volume_ml(result.brain)},
                      {"head_volume_ml", volume_ml(result.head)},
                      {"brain_on_image_faces_ml", cut_ml},
                      {"registration_similarity", result.registration_similarity}};
  if (!same) {
    const Eigen::Vector3d sp = work.spacing_mm();
    record.parameters()["working_spacing_mm"] = p.working_spacing_mm;
    record.figures()["working_grid"] = {{"dim", {work.dim[0], work.dim[1], work.dim[2]}},
                                        {"spacing_mm", {sp[0], sp[1], sp[2]}}};
  }
  for (const auto& [role, path] : out.all())
    if (role != "record") record.add_output(role, path);
}

}  // namespace tmsplan::brain
