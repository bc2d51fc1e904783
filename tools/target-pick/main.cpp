// target-pick: named or coordinate targets -> cortical target, scalp entry and full coil pose.
#include <cstdio>

#include "tmsplan/cli.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/targets.hpp"

using namespace tmsplan;
using targets::Request;

int main(int argc, char** argv) {
  cli::Tool tool("target-pick",
                 "Places TMS targets on one subject: MNI -> subject, snap to the grey-matter crown (or the\n"
                 "nearest grey matter: --snap nearest), M1 hand-knob refinement, scalp entry and coil pose (RAS\n"
                 "mm of the input T1). Reads the folder filled by skull-strip, segment and cortex-map; writes\n"
                 "targets.json, target_pick_qc.png, target_pick.json.");
  targets::Params p;
  std::vector<std::string> names, mni, ras, eeg;
  std::optional<double> handle_angle;
  auto& app = tool.app();
  app.add_option("-s,--subject-dir", p.subject_dir, "Folder with the earlier steps' outputs")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("-t,--target", names, "Library target (see data/targets.json), e.g. M1_hand_left, DLPFC_BA46");
  app.add_option("--mni", mni, "A target at MNI x,y,z (mm); repeatable");
  app.add_option("--ras", ras, "A target at subject RAS x,y,z (mm of the input T1); repeatable");
  app.add_option("--eeg", eeg, "The cortex under a 10-10 EEG position, e.g. F3; repeatable");
  app.add_option("--handle-angle", handle_angle,
                 "Handle angle in degrees from posterior toward lateral (default: the target's rule)")
      ->check(CLI::Range(-180.0, 180.0));
  app.add_option("--hair-offset", p.options.hair_offset_mm, "Coil centre above the scalp, mm")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 30.0));
  app.add_option("--snap-radius", p.options.snap_radius_mm, "Search radius for the grey-matter crown, mm")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 30.0));
  std::string snap = "crown";
  cli::add_choice(app, "--snap", snap,
                  "Where the mapped point goes on the cortex: crown = the nearest gyral crown (the coil's\n"
                  "field is strongest there), nearest = the nearest grey matter (the registered coordinate\n"
                  "projected onto the cortex: deeper; on warped copies of a head it varies about as much as\n"
                  "the registration, the crown more; docs/target-pick.md)",
                  {"crown", "nearest"});
  app.add_option("--library", p.library, "Target library (default: the repository's data/targets.json)");
  app.add_option("-o,--output", p.output, "targets.json to write (default: <subject-dir>/targets.json)");
  tool.add_list("--list-targets", "Print the library's target names (--library or the default) and exit",
                [&] { return targets::library_names(p.library); });
  return tool.run(argc, argv, [&] {
    if (names.empty() && mni.empty() && ras.empty() && eeg.empty())
      throw UsageError("give at least one target (--target, --mni, --ras or --eeg)");
    for (const auto& n : names) p.requests.push_back({Request::Kind::Library, n, {}, handle_angle});
    for (const auto& m : mni)
      p.requests.push_back({Request::Kind::Mni, "mni(" + m + ")", cli::parse_triple(m, "--mni"), handle_angle});
    for (const auto& r : ras)
      p.requests.push_back({Request::Kind::Ras, "ras(" + r + ")", cli::parse_triple(r, "--ras"), handle_angle});
    for (const auto& e : eeg) p.requests.push_back({Request::Kind::Eeg, e, {}, handle_angle});
    if (p.output.empty()) p.output = p.subject_dir + "/targets.json";
    p.options.snap = snap == "nearest" ? targets::Snap::Nearest : targets::Snap::Crown;

    check_output_path(p.output, tool.common().force);
    std::vector<targets::Pick> picks;
    tool.run_step(targets::output_dir(p.output), targets::output_names(),
                  [&](OutputSet& out, Record& r) { picks = targets::run(p, out, r); });
    std::fputs(targets::summary_table(picks).c_str(), stdout);
  });
}
