// cortex-map: the subject <-> MNI transforms, template atlases in the subject, scalp / pial / white
// surfaces and cortical maps; `cortex-map map-point` maps one point through saved transforms.
#include <cstdio>
#include <string>

#include "tmsplan/cli.hpp"
#include "tmsplan/cortex_map.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/provenance.hpp"

using namespace tmsplan;

int main(int argc, char** argv) {
  cli::Tool tool("cortex-map",
                 "Registers a subject T1 to the MNI template (Colin27: affine, then deformable) and describes the\n"
                 "subject's cortex and scalp. Outputs in --out-dir: to_mni_affine.txt, to_mni_warp.nii.gz,\n"
                 "from_mni_affine.txt, from_mni_warp.nii.gz (ITK/ANTs: resample the subject into MNI with\n"
                 "`antsApplyTransforms -r MNI -t to_mni_warp.nii.gz -t to_mni_affine.txt`, MNI images into the\n"
                 "subject with `-r T1 -t from_mni_affine.txt -t from_mni_warp.nii.gz`), atlas_brodmann|aal|\n"
                 "harvardoxford.nii.gz, atlases.json, scalp|pial|white.surf.gii, scalp_cortex_distance.nii.gz,\n"
                 "gyral_depth.nii.gz, brain_mni.nii.gz, cortex_map.json, cortex_map_qc.png.\n"
                 "`cortex-map map-point --subject-dir DIR --mni x,y,z` (or --ras x,y,z) prints the mapped point\n"
                 "as JSON on stdout.");
  cortexmap::Params p;
  std::string out_dir;
  auto& app = tool.app();
  app.add_option("--t1", p.t1, "Bias-corrected T1 (t1w_biascorr.nii.gz)")->check(CLI::ExistingFile);
  app.add_option("--brain", p.brain, "Brain mask on the T1 grid (brain_mask.nii.gz)")->check(CLI::ExistingFile);
  app.add_option("--head", p.head, "Head mask on the T1 grid (head_mask.nii.gz)")->check(CLI::ExistingFile);
  app.add_option("--dseg", p.dseg,
                 "Tissue labels on the T1 grid (dseg.nii.gz: 1 CSF, 2 GM, 3 WM); without it\n"
                 "grey and white matter are approximated by intensity classes")
      ->check(CLI::ExistingFile);
  app.add_option("-o,--out-dir", out_dir, "Folder for the outputs (must exist)");
  cli::add_template_options(app, p.template_head, p.template_brain);
  app.add_option("--atlas-dir", p.atlas_dir, "Folder with brodmann, aal and HarvardOxford-cort-maxprob-thr0-1mm")
      ->capture_default_str()
      ->check(CLI::ExistingDirectory);
  std::string levels;
  for (double mm : p.registration.levels_mm) levels += (levels.empty() ? "" : ", ") + std::to_string(int(mm)) + " mm";
  app.add_option("--iterations", p.registration.iterations, "Deformable iterations per level (" + levels + ")")
      ->capture_default_str()
      ->expected(int(p.registration.levels_mm.size()));

  auto* mp = app.add_subcommand("map-point", "Map one point through the transforms of a cortex-map folder");
  std::string subject_dir, mni_text, ras_text;
  mp->add_option("--subject-dir", subject_dir, "cortex-map output folder")->required()->check(CLI::ExistingDirectory);
  auto* mni_opt = mp->add_option("--mni", mni_text, "MNI point x,y,z (mm) -> subject RAS");
  auto* ras_opt = mp->add_option("--ras", ras_text, "subject RAS point x,y,z (mm) -> MNI");
  mni_opt->excludes(ras_opt);

  return tool.run(argc, argv, [&] {
    if (mp->parsed()) {
      if (mni_text.empty() == ras_text.empty()) throw UsageError("map-point needs one of --mni or --ras");
      const bool from_mni = !mni_text.empty();
      const Eigen::Vector3d point = cli::parse_triple(from_mni ? mni_text : ras_text, from_mni ? "--mni" : "--ras");
      std::printf("%s\n", cortexmap::map_point(subject_dir, point, from_mni).dump().c_str());
      return;
    }
    for (const auto& [name, value] : {std::pair<const char*, std::string*>{"--t1", &p.t1},
                                      {"--brain", &p.brain},
                                      {"--head", &p.head},
                                      {"--out-dir", &out_dir}})
      if (value->empty()) throw UsageError(std::string(name) + " is required (or use the map-point subcommand)");
    for (int n : p.registration.iterations)
      if (n < 0 || n > 1000) throw UsageError("--iterations must be 0..1000 per level");

    const std::string record = tool.run_step(out_dir, cortexmap::output_names(),
                                             [&](OutputSet& out, Record& r) { cortexmap::run(p, out, r); });
    std::printf("%s\n", record.c_str());
  });
}
