// efield: the field the coil induces at each target, the coil turned and moved by it, the E-field
// dose; `efield probe` prints the field of one pose at listed points. docs/efield.md.
#include <cstdio>

#include "tmsplan/cli.hpp"
#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/provenance.hpp"

using namespace tmsplan;

int main(int argc, char** argv) {
  cli::Tool tool("efield",
                 "The electric field induced by the TMS coil at each target of a targets.json (target-pick),\n"
                 "on a boundary-element model of the subject's conductor (--model bem) or a locally fitted sphere\n"
                 "(--model sphere). Searches the handle angle and the coil centre within --search-radius of the\n"
                 "planned entry for the largest field at the cortical target (--objective normal: mean |E.n| over\n"
                 "the grey-matter ROI; magnitude: mean |E|), and with --rmt gives the E-field dose of each target.\n"
                 "Outputs in the subject folder: targets_efield.json (targets.json with an efield block per target\n"
                 "and the chosen coil pose), efield.json (record), efield_<target>.func.gii (|E| and E.n on\n"
                 "pial.surf.gii), efield_<target>.nii.gz (|E| within 40 mm), efield_<target>_qc.png.\n"
                 "Fields are V/m per A/us of coil current slope.");
  auto& app = tool.app();
  efield::Params p;
  app.add_option("-s,--subject-dir", p.subject_dir, "Subject folder (target-pick's outputs)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--targets", p.targets, "targets.json to read (default: SUBJECT_DIR/targets.json)")
      ->check(CLI::ExistingFile);
  app.add_option("--coil", p.coil, "Coil: a preset name (fig8-70) or a SimNIBS .ccd file")->capture_default_str();
  cli::add_choice(app, "--model", p.model, "Field model", {"bem", "sphere"});
  cli::add_choice(app, "--objective", p.objective, "What the placement maximises at the target ROI",
                  {"normal", "magnitude"});
  cli::add_choice(app, "--orientation", p.orientation,
                  "Which pose goes to the navigator files: the field's or the rule's", {"field", "rule"});
  cli::add_bounded(app, "--roi-radius", p.roi_radius_mm, "Grey-matter ROI radius around the target (mm)", 1, 20);
  cli::add_bounded(app, "--normal-smoothing", p.normal_smoothing_mm,
                   "Pial normals averaged along the surface over this width (mm) for the normal objective", 0, 5);
  cli::add_choice(app, "--dose-objective", p.dose_objective,
                  "What the E-field dose matches between the M1 and each target (--rmt)", {"magnitude", "normal"});
  cli::add_bounded(app, "--search-radius", p.search_radius_mm,
                   "Coil centres searched within this distance of the entry (mm)", 0, 30);
  cli::add_bounded(app, "--angle-step", p.angle_step_deg, "Handle angle step (degrees)", 1, 5);
  cli::add_bounded(app, "--didt", p.didt, "Stimulator dI/dt at 100 % MSO, A/us (default: the coil's dIdtmax)", 1, 1000);
  cli::add_bounded(app, "--rmt", p.rmt, "Resting motor threshold (% MSO) at the M1 target: the E-field dose", 1, 100);
  app.add_option("--reference-target", p.reference_target,
                 "Target whose field the RMT matches (default: the plan's motor target)");
  cli::add_bounded(app, "--conductor-offset", p.conductor_offset_mm,
                   "Conductor surface beyond the brain mask's edge (mm)", -5, 8);
  app.add_flag("--monophasic", p.monophasic,
               "Monophasic pulses: search the whole circle (biphasic: angles modulo 180)");
  app.add_flag("--strict", p.strict, "Refuse a dose above --max-intensity");
  cli::add_bounded(app, "--max-intensity", p.max_intensity, "Highest deliverable intensity (% MSO)", 1, 100);
  tool.add_list("--list-coils", "Print the built-in coil presets' names (data/coils/presets.json) and exit",
                [] { return efield::preset_names(); });

  // fallthrough: the common options (--threads, --verbose ...) may follow the subcommand.
  auto* pr = app.add_subcommand("probe", "The field of one coil pose at points: x,y,z,ex,ey,ez lines")->fallthrough();
  efield::ProbeParams q;
  std::string centre;
  pr->add_option("--coil", q.coil, "Coil: a preset name or a .ccd file")->capture_default_str();
  pr->add_option("--pose", q.pose, "targets.json (its first target, or --target) or a 4x4 matrix file (RAS mm)")
      ->required()
      ->check(CLI::ExistingFile);
  pr->add_option("--target", q.target, "Target of a targets.json");
  pr->add_option("--points", q.points, "Text file of x,y,z lines (RAS mm)")->required()->check(CLI::ExistingFile);
  pr->add_option("--model", q.model, "sphere, bem or primary (free space)")->capture_default_str();
  pr->add_option("--sphere-centre", centre, "Sphere centre x,y,z (RAS mm) for --model sphere");
  pr->add_option("--surface", q.surface, "Closed outward GIfTI surface (RAS mm), bem model")->check(CLI::ExistingFile);
  pr->add_option("--didt", q.didt, "dI/dt in A/us (default 1)")->capture_default_str();

  auto* fit = app.add_subcommand("fit-coil", "Fit the built-in figure-8 model to a coil; prints JSON")->fallthrough();
  std::string fit_file;
  fit->add_option("coil", fit_file, "Reference coil (.ccd)")->required()->check(CLI::ExistingFile);

  return tool.run(argc, argv, [&] {
    if (fit->parsed()) {
      std::printf("%s\n", efield::fit_figure8_json(efield::read_ccd(fit_file)).dump(1).c_str());
      return;
    }
    if (pr->parsed()) {
      if (!centre.empty()) q.sphere_centre = cli::parse_triple(centre, "--sphere-centre");
      std::fputs(efield::probe(q).c_str(), stdout);
      return;
    }
    if (p.subject_dir.empty()) throw UsageError("--subject-dir is required (or use the probe subcommand)");
    std::string targets_path;
    tool.run_step(p.subject_dir, efield::output_names(p), [&](OutputSet& out, Record& r) {
      efield::run(p, out, r);
      targets_path = out.path("targets");
    });
    std::printf("%s\n", targets_path.c_str());
  });
}
