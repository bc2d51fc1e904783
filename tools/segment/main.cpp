// segment: CSF, grey matter and white matter labels and probabilities inside a brain mask.
#include <algorithm>
#include <cstdio>

#include "tmsplan/cli.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/tissue.hpp"

using namespace tmsplan;

int main(int argc, char** argv) {
  cli::Tool tool("segment", "Classifies the brain of a T1-weighted scan into CSF, grey matter and white matter:\n"
                            "an EM-fitted intensity mixture with partial-volume classes, a Markov random field\n"
                            "prior and residual bias correction. Outputs in --out-dir: dseg.nii.gz (0 background,\n"
                            "1 CSF, 2 GM, 3 WM), probseg_csf|gm|wm.nii.gz, segment.json, segment_qc.png.");
  tissue::RunParams p;
  tissue::Params& params = p.model;
  std::string out_dir;
  bool no_bias = false, no_pv = false;
  auto& app = tool.app();
  app.add_option("--t1", p.t1, "T1-weighted image (bias-corrected or not): NIfTI or DICOM folder")->required();
  app.add_option("--mask", p.mask, "Brain mask on the same grid as --t1 (> 0.5 inside)")->required();
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
  bool no_walls = false;
  app.add_flag("--no-csf-wm-walls", no_walls,
               "Keep the partial-volume ladder's reading of CSF/WM walls (docs/segment.md, method 6b)");
  app.add_flag("--mixel-means", params.mixel_means,
               "Class means from all voxels through the mixing model (experimental, see docs/segment.md)");
  return tool.run(argc, argv, [&] {
    params.bias_correction = !no_bias;
    params.partial_volume = !no_pv;
    params.csf_wm_walls = !no_walls;
    params.min_iterations = std::min(params.min_iterations, params.max_iterations);
    const std::string record =
        tool.run_step(out_dir, tissue::output_names(), [&](OutputSet& out, Record& r) { tissue::run(p, out, r); });
    std::printf("%s\n", record.c_str());
  });
}
