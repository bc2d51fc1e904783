// segment: CSF, grey matter and white matter labels and probabilities inside a brain mask.
#include <cstdio>
#include <filesystem>

#include "tmsplan/cli.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/tissue.hpp"

using namespace tmsplan;

namespace {

RasPoint mask_centre(const Mask& mask) {
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  double n = 0;
  const Grid& g = mask.grid;
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i)
        if (mask(i, j, k)) {
          sum += Eigen::Vector3d(double(i), double(j), double(k));
          n += 1;
        }
  return g.ras(std::lround(sum[0] / n), std::lround(sum[1] / n), std::lround(sum[2] / n));
}

// Removes the outputs this run wrote when a later step fails, so no partial set is left behind.
struct CleanupOnError {
  std::vector<std::string> written;
  bool done = false;
  ~CleanupOnError() {
    if (done) return;
    for (const auto& p : written) std::filesystem::remove(p);
  }
};

}  // namespace

int main(int argc, char** argv) {
  cli::Tool tool("segment", "Classifies the brain of a T1-weighted scan into CSF, grey matter and white matter:\n"
                            "an EM-fitted intensity mixture with partial-volume classes, a Markov random field\n"
                            "prior and residual bias correction. Outputs in --out-dir: dseg.nii.gz (0 background,\n"
                            "1 CSF, 2 GM, 3 WM), probseg_csf|gm|wm.nii.gz, segment.json, segment_qc.png.");
  std::string t1_path, mask_path, out_dir;
  tissue::Params params;
  bool no_bias = false, no_pv = false;
  auto& app = tool.app();
  app.add_option("--t1", t1_path, "T1-weighted image (bias-corrected or not): NIfTI or DICOM folder")->required();
  app.add_option("--mask", mask_path, "Brain mask on the same grid as --t1 (> 0.5 inside)")->required();
  app.add_option("-o,--out-dir", out_dir, "Folder for the outputs (must exist)")->required();
  app.add_option("--mrf-beta", params.mrf_beta, "Strength of the spatial (MRF) prior per face neighbour")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--bias-degree", params.bias_degree, "Polynomial degree of the residual bias field")
      ->capture_default_str()
      ->check(CLI::Range(0, 7));
  app.add_option("--bias-sigma", params.bias_sigma_mm, "Extra local bias detail: Gaussian sigma in mm (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 500.0));
  app.add_option("--denoise", params.denoise_range,
                 "Edge-preserving pre-filter strength, in noise standard deviations (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 20.0));
  app.add_option("--map-smoothing", params.map_smoothing_mm, "Gaussian sigma (mm) for the tissue maps (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 5.0));
  app.add_option("--iterations", params.max_iterations, "Maximum EM iterations")
      ->capture_default_str()
      ->check(CLI::Range(1, 500));
  app.add_flag("--no-bias-correction", no_bias, "Do not estimate a residual bias field");
  app.add_option(
         "--working-spacing", params.working_spacing_mm,
         "Axes finer than 0.9 x this (mm) are segmented at this spacing and the probabilities brought back (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3.0));
  app.add_flag("--no-partial-volume", no_pv, "Do not model mixed CSF/GM and GM/WM voxels");
  app.add_flag("--mixel-means", params.mixel_means,
               "Class means from all voxels through the mixing model (experimental, see docs/segment.md)");
  return tool.run(argc, argv, [&] {
    const double start = now_seconds();
    params.bias_correction = !no_bias;
    params.partial_volume = !no_pv;
    params.min_iterations = std::min(params.min_iterations, params.max_iterations);
    const bool force = tool.common().force;
    check_input_path(t1_path);
    check_input_path(mask_path);
    OutputSet out(out_dir, force);
    const auto dseg_out = out.add("dseg", "dseg.nii.gz");
    std::array<std::string, tissue::kClasses> prob_out;
    for (int c = 0; c < tissue::kClasses; ++c)
      prob_out[c] = out.add("probseg_" + tissue::class_names()[c], "probseg_" + tissue::class_names()[c] + ".nii.gz");
    const auto qc_out = out.add("qc", "segment_qc.png");
    const auto record_out = out.add("record", "segment.json");
    out.check();

    Record record("segment", argc, argv);
    record.add_input("t1", t1_path);
    record.add_input("mask", mask_path);
    const Image t1 = read_image(t1_path);
    const Mask mask = read_mask(mask_path, &t1.grid);
    log::info(fmt::format("read {} ({}x{}x{})", t1_path, t1.grid.dim[0], t1.grid.dim[1], t1.grid.dim[2]));
    log::debug(fmt::format("inputs read at {:.2f} s", now_seconds() - start));
    const tissue::Result r = tissue::segment(t1, mask, params);
    log::debug(fmt::format("segmented at {:.2f} s", now_seconds() - start));

    CleanupOnError cleanup;
    WriteOptions wo;
    wo.force = force;
    wo.description = "tmsplan segment: 0 bg, 1 CSF, 2 GM, 3 WM";
    write_mask(dseg_out, r.dseg, wo);
    cleanup.written.push_back(dseg_out);
    for (int c = 0; c < tissue::kClasses; ++c) {
      wo.description = "tmsplan segment: " + tissue::class_names()[c] + " probability";
      write_image(prob_out[c], r.probability[c], wo);
      cleanup.written.push_back(prob_out[c]);
    }
    log::debug(fmt::format("maps written at {:.2f} s", now_seconds() - start));
    QcFigure qc(t1, mask_centre(mask));
    qc.add_labels(r.dseg, {{0, 0, 0}, {40, 120, 255}, {255, 170, 0}, {60, 220, 90}});
    qc.add_outline(mask, {255, 255, 0});
    qc.write_png(qc_out, force);
    cleanup.written.push_back(qc_out);

    log::debug(fmt::format("QC written at {:.2f} s", now_seconds() - start));
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
                           {"working_spacing_mm", params.working_spacing_mm},
                           {"max_iterations", params.max_iterations},
                           {"min_iterations", params.min_iterations},
                           {"tolerance", params.tolerance}};
    auto& fig = record.figures();
    for (int c = 0; c < tissue::kClasses; ++c) {
      const std::string& name = tissue::class_names()[c];
      fig["volume_ml"][name] = r.volume_ml[c];
      fig["label_volume_ml"][name] = r.label_volume_ml[c];
      fig["class_mean"][name] = r.mean[c];
      fig["class_sd"][name] = r.sd[c];
    }
    fig["noise_sd"] = r.noise_sd;
    fig["iterations"] = r.iterations;
    {
      const Grid work = tissue::working_grid(t1.grid, params.working_spacing_mm);
      const Eigen::Vector3d ws = work.spacing_mm();
      fig["working_grid_mm"] = {ws[0], ws[1], ws[2]};
    }
    fig["converged"] = r.converged;
    fig["seconds"] = now_seconds() - start;
    for (const auto& [role, path] : out.all())
      if (role != "record") record.add_output(role, path);
    record.write(record_out, force);
    cleanup.done = true;
    log::info(fmt::format("CSF {:.0f} ml, GM {:.0f} ml, WM {:.0f} ml in {} iterations", r.volume_ml[0], r.volume_ml[1],
                          r.volume_ml[2], r.iterations));
    std::printf("%s\n", record_out.c_str());
  });
}
