// protocol-export: navigator files, protocol.json with safety and dose, and the clinician's report
// for the targets of one subject.
#include "tmsplan/cli.hpp"
#include "tmsplan/plan.hpp"
#include "tmsplan/protocol.hpp"
#include "tmsplan/provenance.hpp"

using namespace tmsplan;

int main(int argc, char** argv) {
  cli::Tool tool(
      "protocol-export",
      "Turns targets.json (target-pick) and an rTMS protocol into a treatment plan in OUTDIR/plan/:\n"
      "InstrumentMarker<stamp>.xml and EntryTarget<stamp>.xml (Localite's own names; the 17-digit stamp is\n"
      "derived from the plan, so the same plan gives the same names), brainsight_v12.txt, brainsight_v14.txt,\n"
      "ant_markers.mrk, markers.tsv, tms.tsv, protocol.json (protocol, safety verdicts, dose arithmetic),\n"
      "t1w_navigator.nii.gz (the T1 with qform = sform), report.html and protocol_export.json (record).\n"
      "Every train is checked against the Rossi 2009 table of the longest safe single train and its\n"
      "inter-train interval against Chen et al. 1997; with --rmt the intensity is adjusted for each\n"
      "target's scalp-to-cortex distance relative to M1 (Stokes et al. 2005, about 3 %MSO per mm).\n"
      "Coordinates: world RAS+ mm of the reference T1; coil axes as SimNIBS (z into the head, y along the handle).");
  plan::Params p;
  double rmt = 0;
  auto& app = tool.app();
  app.add_option("--targets", p.targets_path, "targets.json written by target-pick")->required();
  app.add_option("--t1", p.t1_path, "The reference T1 of targets.json (NIfTI or DICOM folder)")->required();
  app.add_option("--protocol", p.protocol,
                 "Preset id from data/protocols.json (e.g. passard2007), or a protocol JSON file")
      ->required();
  app.add_option("-o,--out-dir", p.out_dir, "Folder that receives plan/ (must exist)")->required();
  app.add_option("--head-mask", p.head_mask_path,
                 "Head mask for the scalp rendering (default: SUBJECT_DIR/head_mask.nii.gz, else a T1 threshold)")
      ->check(CLI::ExistingFile);
  app.add_option("--subject-dir", p.subject_dir,
                 "Folder with the earlier steps' QC pictures and records (default: the folder of targets.json)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--target", p.target_names, "Export only these targets (repeatable; default: all)");
  auto* rmt_opt =
      app.add_option("--rmt", rmt, "Resting motor threshold measured at M1, %MSO")->check(CLI::Range(1.0, 100.0));
  app.add_option("--m1", p.m1_target,
                 "The M1 target whose depth goes with --rmt (default: the only or first M1 target)");
  app.add_flag("--localite-lps", p.localite_lps, "Write the Localite files in LPS instead of RAS");
  app.add_flag("--strict", p.strict,
               "Refuse a protocol whose trains exceed the safety table's duration or break the inter-train\n"
               "interval rule, or cannot be checked against either");
  tool.add_list("--list-protocols", "Print the preset protocols' ids (data/protocols.json) and exit",
                [] { return protocol::preset_ids(); });
  return tool.run(argc, argv, [&] {
    if (rmt_opt->count() > 0) p.rmt_pct_mso = rmt;
    p.force = tool.common().force;
    Record record("protocol-export", argc, argv);
    const plan::Result result = plan::export_plan(p, record);
    std::printf("%s\n", result.plan_dir.c_str());
  });
}
