// skull-strip: bias-corrected T1, brain mask and head (scalp) mask, with a record and QC picture.
#include <cstdio>

#include "tmsplan/brain.hpp"
#include "tmsplan/cli.hpp"

using namespace tmsplan;

int main(int argc, char** argv) {
  cli::Tool tool("skull-strip",
                 "Bias-corrects a T1-weighted head scan and writes its brain mask and head (scalp) mask.\n"
                 "Outputs in --out-dir: t1w_biascorr.nii.gz, brain_mask.nii.gz, head_mask.nii.gz,\n"
                 "skull_strip.json (provenance and figures), skull_strip_qc.png. A scan finer than 0.9 mm\n"
                 "along an axis is processed on a 1 mm working grid; the outputs keep the scan's grid.");
  brain::Params p;
  std::string out_dir;
  auto& app = tool.app();
  app.add_option("t1", p.t1, "T1-weighted head: NIfTI (.nii, .nii.gz) or a DICOM series folder")->required();
  app.add_option("-o,--out-dir", out_dir, "Folder for the outputs (must exist)")->required();
  app.add_option("--series", p.series, "DICOM series instance UID, when the folder holds several");
  cli::add_template_options(app, p.options.template_head, p.options.template_brain);
  return tool.run(argc, argv, [&] {
    const std::string record =
        tool.run_step(out_dir, brain::output_names(), [&](OutputSet& out, Record& r) { brain::run(p, out, r); });
    std::printf("%s\n", record.c_str());
  });
}
