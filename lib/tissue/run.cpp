// The segment step: reads the T1 and the mask, segments, writes the maps, the labels, the QC figure
// and fills the record (tools/segment only declares the options and calls run()).
#include <cmath>

#include <fmt/format.h>

#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/tissue.hpp"

namespace tmsplan::tissue {

std::vector<std::pair<std::string, std::string>> output_names() {
  std::vector<std::pair<std::string, std::string>> names{{"dseg", "dseg.nii.gz"}};
  for (const auto& c : class_names()) names.push_back({"probseg_" + c, "probseg_" + c + ".nii.gz"});
  names.push_back({"qc", "segment_qc.png"});
  names.push_back({"record", "segment.json"});
  return names;
}

namespace {

// The QC slices go through the voxel centre nearest to the mask's centroid.
RasPoint qc_centre(const Mask& mask) {
  const VoxelIndex c = ras_to_voxel(mask.grid.vox2ras, RasPoint(centroid_ras(mask)));
  return mask.grid.ras(std::lround(c.v[0]), std::lround(c.v[1]), std::lround(c.v[2]));
}

void write_outputs(const Image& t1, const Mask& mask, const Result& r, const OutputSet& out) {
  WriteOptions wo;
  wo.force = out.force();
  wo.description = "tmsplan segment: 0 bg, 1 CSF, 2 GM, 3 WM";
  write_mask(out.path("dseg"), r.dseg, wo);
  for (int c = 0; c < kClasses; ++c) {
    wo.description = "tmsplan segment: " + class_names()[c] + " probability";
    write_image(out.path("probseg_" + class_names()[c]), r.probability[c], wo);
  }
  QcFigure qc(t1, qc_centre(mask));
  qc.add_labels(r.dseg, {{0, 0, 0}, {40, 120, 255}, {255, 170, 0}, {60, 220, 90}});
  qc.add_outline(mask, {255, 255, 0});
  qc.write_png(out.path("qc"), out.force());
}

void fill_record(const Params& params, const Grid& input, const Result& r, Record& record) {
  record.parameters() = {{"mrf_beta", params.mrf_beta},
                         {"partial_volume", params.partial_volume},
                         {"bias_correction", params.bias_correction},
                         {"bias_degree", params.bias_degree},
                         {"bias_sigma_mm", params.bias_sigma_mm},
                         {"bias_cell_mm", params.bias_cell_mm},
                         {"denoise_range", params.denoise_range},
                         {"denoise_passes", params.denoise_passes},
                         {"map_smoothing_mm", params.map_smoothing_mm},
                         {"mixel_means", params.mixel_means},
                         {"csf_wm_walls", params.csf_wm_walls},
                         {"working_spacing_mm", params.working_spacing_mm},
                         {"max_iterations", params.max_iterations},
                         {"min_iterations", params.min_iterations},
                         {"tolerance", params.tolerance}};
  auto& fig = record.figures();
  for (int c = 0; c < kClasses; ++c) {
    const std::string& name = class_names()[c];
    fig["volume_ml"][name] = r.volume_ml[c];
    fig["label_volume_ml"][name] = r.label_volume_ml[c];
    fig["class_mean"][name] = r.mean[c];
    fig["class_sd"][name] = r.sd[c];
  }
  fig["noise_sd"] = r.noise_sd;
  fig["iterations"] = r.iterations;
  const Eigen::Vector3d ws = working_grid(input, params.working_spacing_mm).spacing_mm();
  fig["working_grid_mm"] = {ws[0], ws[1], ws[2]};
  fig["converged"] = r.converged;
}

}  // namespace

void run(const RunParams& p, const OutputSet& out, Record& record) {
  const double start = now_seconds();
  check_input_path(p.t1);
  check_input_path(p.mask);
  record.add_input("t1", p.t1);
  record.add_input("mask", p.mask);
  const Image t1 = read_image(p.t1);
  const Mask mask = read_mask(p.mask, &t1.grid);
  log::info(fmt::format("read {} ({}x{}x{})", p.t1, t1.grid.dim[0], t1.grid.dim[1], t1.grid.dim[2]));
  const Result r = segment(t1, mask, p.model);
  check_layer_order(r.dseg, mask, p.t1);
  log::debug(fmt::format("segmented at {:.2f} s", now_seconds() - start));
  write_outputs(t1, mask, r, out);
  fill_record(p.model, t1.grid, r, record);
  record.figures()["seconds"] = now_seconds() - start;
  for (const auto& [role, path] : out.all())
    if (role != "record") record.add_output(role, path);
  log::info(fmt::format("CSF {:.0f} ml, GM {:.0f} ml, WM {:.0f} ml in {} iterations", r.volume_ml[0], r.volume_ml[1],
                        r.volume_ml[2], r.iterations));
}

}  // namespace tmsplan::tissue
