// skull-strip: bias-corrected T1, brain mask and head (scalp) mask, with a record and QC picture.
#include "tmsplan/brain.hpp"
#include "tmsplan/cli.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/qc.hpp"

using namespace tmsplan;

int main(int argc, char** argv) {
  cli::Tool tool("skull-strip",
                 "Bias-corrects a T1-weighted head scan and writes its brain mask and head (scalp) mask.\n"
                 "Outputs in --out-dir: t1w_biascorr.nii.gz, brain_mask.nii.gz, head_mask.nii.gz,\n"
                 "skull_strip.json (provenance and figures), skull_strip_qc.png.");
  std::string input, out_dir, series;
  BrainOptions options;
  auto& app = tool.app();
  app.add_option("t1", input, "T1-weighted head: NIfTI (.nii, .nii.gz) or a DICOM series folder")->required();
  app.add_option("-o,--out-dir", out_dir, "Folder for the outputs (must exist)")->required();
  app.add_option("--series", series, "DICOM series instance UID, when the folder holds several");
  app.add_option("--template", options.template_head, "Template head (MNI space)")->check(CLI::ExistingFile);
  app.add_option("--template-brain", options.template_brain, "Template brain (same space, > 0 inside)")
      ->check(CLI::ExistingFile);
  return tool.run(argc, argv, [&] {
    const bool force = tool.common().force;
    OutputSet out(out_dir, force);
    const auto t1w_out = out.add("t1w_biascorr", "t1w_biascorr.nii.gz");
    const auto brain_out = out.add("brain_mask", "brain_mask.nii.gz");
    const auto head_out = out.add("head_mask", "head_mask.nii.gz");
    const auto qc_out = out.add("qc", "skull_strip_qc.png");
    const auto record_out = out.add("record", "skull_strip.json");
    out.check();

    Record record("skull-strip", argc, argv);
    record.add_input("t1", input);
    ReadOptions ro;
    ro.series_uid = series;
    const Image t1 = read_image(input, ro);
    log::info(fmt::format("read {} ({}x{}x{})", input, t1.grid.dim[0], t1.grid.dim[1], t1.grid.dim[2]));
    const BrainResult result = skull_strip(t1, input, options);

    WriteOptions wo;
    wo.force = force;
    wo.description = "tmsplan skull-strip";
    write_image(t1w_out, result.corrected, wo);
    write_mask(brain_out, result.brain, wo);
    write_mask(head_out, result.head, wo);

    QcFigure qc(result.corrected, RasPoint(centroid_ras(result.brain)));
    qc.add_outline(result.head, {255, 200, 0});
    qc.add_outline(result.brain, {0, 220, 80});
    qc.write_png(qc_out, force);

    record.parameters() = {{"template_head", options.template_head}, {"template_brain", options.template_brain}};
    record.figures() = {{"brain_volume_ml", volume_ml(result.brain)},
                        {"head_volume_ml", volume_ml(result.head)},
                        {"registration_similarity", result.registration_similarity}};
    for (const auto& [role, path] : out.all())
      if (role != "record") record.add_output(role, path);
    record.write(record_out, force);
    std::printf("%s\n", record_out.c_str());
  });
}
