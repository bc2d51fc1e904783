// target-pick: named or coordinate targets -> cortical target, scalp entry and full coil pose.
#include <chrono>
#include <filesystem>

#include "tmsplan/cli.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/targets.hpp"
#include "tmsplan/warp.hpp"

using namespace tmsplan;
using namespace tmsplan::targets;

int main(int argc, char** argv) {
  cli::Tool tool("target-pick",
                 "Places TMS targets on one subject: MNI -> subject, snap to the grey-matter crown, M1 hand-knob\n"
                 "refinement, scalp entry and coil pose (RAS mm of the input T1). Reads the folder filled by\n"
                 "skull-strip, segment and cortex-map; writes targets.json, target_pick_qc.png, target_pick.json.");
  std::string dir, library_path, output;
  std::vector<std::string> names, mni, ras, eeg;
  Options options;
  std::optional<double> handle_angle;
  auto& app = tool.app();
  app.add_option("-s,--subject-dir", dir, "Folder with the earlier steps' outputs")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("-t,--target", names, "Library target (see data/targets.json), e.g. M1_hand_left, DLPFC_BA46");
  app.add_option("--mni", mni, "A target at MNI x,y,z (mm); repeatable");
  app.add_option("--ras", ras, "A target at subject RAS x,y,z (mm of the input T1); repeatable");
  app.add_option("--eeg", eeg, "The cortex under a 10-10 EEG position, e.g. F3; repeatable");
  app.add_option("--handle-angle", handle_angle,
                 "Handle angle in degrees from posterior toward lateral (default: the target's rule)")
      ->check(CLI::Range(-180.0, 180.0));
  app.add_option("--hair-offset", options.hair_offset_mm, "Coil centre above the scalp, mm")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 30.0));
  app.add_option("--snap-radius", options.snap_radius_mm, "Search radius for the grey-matter crown, mm")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 30.0));
  app.add_option("--library", library_path, "Target library (default: the repository's data/targets.json)");
  app.add_option("-o,--output", output, "targets.json to write (default: <subject-dir>/targets.json)");
  return tool.run(argc, argv, [&] {
    const bool force = tool.common().force;
    if (names.empty() && mni.empty() && ras.empty() && eeg.empty())
      throw UsageError("give at least one target (--target, --mni, --ras or --eeg)");
    std::vector<Request> requests;
    for (const auto& n : names) requests.push_back({Request::Kind::Library, n, {}, handle_angle});
    for (const auto& m : mni)
      requests.push_back({Request::Kind::Mni, "mni(" + m + ")", cli::parse_triple(m, "--mni"), handle_angle});
    for (const auto& r : ras)
      requests.push_back({Request::Kind::Ras, "ras(" + r + ")", cli::parse_triple(r, "--ras"), handle_angle});
    for (const auto& e : eeg) requests.push_back({Request::Kind::Eeg, e, {}, handle_angle});
    if (output.empty()) output = dir + "/targets.json";
    const std::string out_dir = std::filesystem::path(output).parent_path().empty()
                                    ? "."
                                    : std::filesystem::path(output).parent_path().string();
    OutputSet out(out_dir, force);
    out.add("qc", "target_pick_qc.png");
    out.add("record", "target_pick.json");
    check_output_path(output, force);
    out.check();

    Record record("target-pick", argc, argv);
    auto t0 = std::chrono::steady_clock::now();
    auto lap = [&t0](const char* what) {
      const auto t = std::chrono::steady_clock::now();
      log::debug(fmt::format("{}: {:.2f} s", what, std::chrono::duration<double>(t - t0).count()));
      t0 = t;
    };
    const Library library = load_library(library_path);
    SubjectFiles files;
    Subject subject = load_subject(dir, &files);
    lap("subject loaded");
    const MniMap map = MniMap::load(dir);
    subject.mni_to_subject = [&map](const Eigen::Vector3d& p) { return map.to_subject(p); };
    subject.subject_to_mni = [&map](const Eigen::Vector3d& p) { return map.to_mni(p); };
    lap("MNI map loaded");
    const Scalp scalp(subject.head);
    lap("scalp model");

    std::vector<Pick> picks;
    for (const auto& req : requests) {
      try {
        picks.push_back(pick(subject, scalp, library, req, options));
      } catch (const std::exception&) {
        rethrow_with_context("cannot place target '" + req.name + "'");
      }
    }
    // DLPFC targets: where the classical scalp rules would have put the coil.
    std::optional<Pick> m1;
    for (const auto& p : picks)
      if (p.name.rfind("M1_hand_left", 0) == 0) m1 = p;
    if (!m1) m1 = pick(subject, scalp, library, {Request::Kind::Library, "M1_hand_left", {}, std::nullopt}, options);
    for (auto& p : picks)
      if (p.name.rfind("DLPFC", 0) == 0) p.classical = classical_positions(subject, scalp, library, p, m1);

    lap("targets placed");
    const auto doc = targets_document(picks, subject.grid, files, options.hair_offset_mm);
    write_file_atomic(output, doc.dump(2) + "\n", force);

    // QC: one row per target (in the order of targets.json), three slices through its cortical
    // point: grey matter outlined, the target's atlas area (e.g. BA4, precentral) shaded, target
    // (yellow), scalp entry (red), handle direction (red arrow), coil axis into the head (cyan).
    std::vector<std::uint8_t> rows;
    int qc_width = 0, qc_height = 0;
    const auto window = QcFigure::display_window(subject.t1);
    for (const auto& p : picks) {
      QcFigure qc(subject.t1, window, RasPoint(p.cortical), 120.0, 0.5);
      if (!subject.brodmann.data.empty() && p.atlas.contains("brodmann") && p.atlas["brodmann"].get<int>() > 0) {
        const int area = p.atlas["brodmann"].get<int>();
        Labels region(subject.grid, 0);
        for (std::size_t i = 0; i < region.data.size(); ++i) region.data[i] = subject.brodmann.data[i] == area ? 1 : 0;
        qc.add_labels(region, {{0, 0, 0}, {60, 200, 90}}, 0.3);
      }
      qc.add_outline(subject.gm, {80, 160, 255});
      qc.add_arrow(RasPoint(p.scalp), RasVector(-p.scalp_to_cortex_mm * p.normal), {0, 220, 220});
      qc.add_arrow(RasPoint(p.scalp), RasVector(20.0 * p.handle), {255, 80, 80});
      qc.add_point(RasPoint(p.cortical), {255, 220, 0}, 4);
      qc.add_point(RasPoint(p.scalp), {255, 80, 80}, 4);
      rows.insert(rows.end(), qc.pixels().begin(), qc.pixels().end());
      qc_width = qc.width();
      qc_height += qc.height();
    }
    write_file_atomic(out.path("qc"), encode_png(rows, qc_width, qc_height), force);
    lap("QC figure");

    std::vector<std::pair<std::string, std::string>> inputs;
    for (const char* f :
         {"t1w_biascorr.nii.gz", "head_mask.nii.gz", "brain_mask.nii.gz", "dseg.nii.gz", "cortex_map.json"})
      if (std::filesystem::exists(dir + "/" + f)) inputs.emplace_back(f, dir + "/" + f);
    record.add_inputs(inputs);
    record.add_output("targets", output);
    record.add_output("qc", out.path("qc"));
    record.parameters() = {{"snap_radius_mm", options.snap_radius_mm}, {"hair_offset_mm", options.hair_offset_mm}};
    for (const auto& p : picks)
      record.figures()[p.name] = {{"scalp_to_cortex_mm", p.scalp_to_cortex_mm},
                                  {"snap_shift_mm", p.snap_shift_mm},
                                  {"refine_shift_mm", p.refine_shift_mm}};
    record.write(out.path("record"), force);
    lap("record");
    std::printf("name\tcortical_ras\tscalp_ras\tscalp_to_cortex_mm\n");
    for (const auto& p : picks)
      std::printf("%s\t%.1f,%.1f,%.1f\t%.1f,%.1f,%.1f\t%.1f\n", p.name.c_str(), p.cortical[0], p.cortical[1],
                  p.cortical[2], p.scalp[0], p.scalp[1], p.scalp[2], p.scalp_to_cortex_mm);
  });
}
