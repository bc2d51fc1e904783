// target-pick as one library call: the subject and its MNI map loaded, every requested target
// placed, the prefrontal targets compared with the classical scalp rules, then targets.json, the
// QC picture and the record.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/targets.hpp"
#include "tmsplan/warp.hpp"

namespace tmsplan::targets {

namespace {

// Debug timing of the sections of run().
class Laps {
 public:
  void lap(const char* what) {
    const auto t = std::chrono::steady_clock::now();
    log::debug(fmt::format("{}: {:.2f} s", what, std::chrono::duration<double>(t - t0_).count()));
    t0_ = t;
  }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// Prefrontal targets: where the classical scalp rules (EEG F3, 5 cm anterior of the motor spot)
// would have put the coil. The motor spot is a placed motor target of the same hemisphere, else
// the library's first motor target of that hemisphere, placed for the comparison.
void add_classical_positions(const Subject& subject, const Scalp& scalp, const Library& library, const Options& options,
                             std::vector<Pick>& picks) {
  for (auto& p : picks) {
    if (p.kind != "prefrontal") continue;
    std::optional<Pick> motor;
    std::string motor_problem;
    for (const auto& q : picks)
      if (q.kind == "motor" && q.hemisphere == p.hemisphere) motor = q;
    if (!motor)
      for (const auto& e : library.entries)
        if (e.kind == "motor" && e.hemisphere == p.hemisphere) {
          // The comparison is an extra: a motor spot that cannot be placed (e.g. its scalp is cut
          // off by the field of view) leaves the rule out, not the prefrontal target.
          try {
            motor = pick(subject, scalp, library, {Request::Kind::Library, e.name, {}, std::nullopt}, options);
          } catch (const Error& err) {
            motor_problem = fmt::format("not computed: {} could not be placed ({})", e.name, err.what());
          }
          break;
        }
    p.classical = classical_positions(subject, scalp, library, p, motor);
    if (!motor_problem.empty()) p.classical["rule_5cm_note"] = motor_problem;
  }
}

// One row per target (in the order of targets.json), three slices through its cortical point:
// grey matter outlined, the target's atlas area (e.g. BA4, precentral) shaded, target (yellow),
// scalp entry (red), handle direction (red arrow), coil axis into the head (cyan).
std::string qc_png(const Subject& subject, const std::vector<Pick>& picks) {
  std::vector<std::uint8_t> rows;
  int width = 0, height = 0;
  const auto window = QcFigure::display_window(subject.t1);
  for (const auto& p : picks) {
    QcFigure qc(subject.t1, window, RasPoint(p.cortical), 120.0, 0.5);
    if (!subject.brodmann.data.empty() && p.atlas.contains("brodmann") && p.atlas["brodmann"].get<int>() > 0) {
      const int area = p.atlas["brodmann"].get<int>();
      Labels region(subject.grid, 0);
      parallel_for(std::int64_t(region.data.size()), [&](std::int64_t b, std::int64_t e) {
        for (std::size_t i = std::size_t(b); i < std::size_t(e); ++i)
          region.data[i] = subject.brodmann.data[i] == area ? 1 : 0;
      });
      qc.add_labels(region, {{0, 0, 0}, {60, 200, 90}}, 0.3);
    }
    qc.add_outline(subject.gm, {80, 160, 255});
    qc.add_arrow(RasPoint(p.scalp), RasVector(-p.scalp_to_cortex_mm * p.normal), {0, 220, 220});
    qc.add_arrow(RasPoint(p.scalp), RasVector(20.0 * p.handle), {255, 80, 80});
    qc.add_point(RasPoint(p.cortical), {255, 220, 0}, 4);
    qc.add_point(RasPoint(p.scalp), {255, 80, 80}, 4);
    rows.insert(rows.end(), qc.pixels().begin(), qc.pixels().end());
    width = qc.width();
    height += qc.height();
  }
  return encode_png(rows, width, height);
}

void fill_record(const Params& params, const OutputSet& out, const std::vector<Pick>& picks, Record& record) {
  std::vector<std::pair<std::string, std::string>> inputs;
  for (const char* f : {"t1w_biascorr.nii.gz", "head_mask.nii.gz", "brain_mask.nii.gz", "dseg.nii.gz",
                        "probseg_gm.nii.gz", "cortex_map.json"})
    if (std::filesystem::exists(params.subject_dir + "/" + f)) inputs.emplace_back(f, params.subject_dir + "/" + f);
  record.add_inputs(inputs);
  record.add_output("targets", params.output);
  record.add_output("qc", out.path("qc"));
  record.parameters() = {{"snap", params.options.snap == Snap::Nearest ? "nearest" : "crown"},
                         {"snap_radius_mm", params.options.snap_radius_mm},
                         {"hair_offset_mm", params.options.hair_offset_mm}};
  for (const auto& p : picks)
    record.figures()[p.name] = {{"scalp_to_cortex_mm", p.scalp_to_cortex_mm},
                                {"prior_to_gm_mm", p.prior_to_gm_mm},
                                {"snap_shift_mm", p.snap_shift_mm},
                                {"refine_shift_mm", p.refine_shift_mm}};
}

}  // namespace

std::vector<std::pair<std::string, std::string>> output_names() {
  return {{"qc", "target_pick_qc.png"}, {"record", "target_pick.json"}};
}

std::string output_dir(const std::string& targets_json) {
  const auto parent = std::filesystem::path(targets_json).parent_path();
  return parent.empty() ? "." : parent.string();
}

std::vector<Pick> run(const Params& params, const OutputSet& out, Record& record) {
  const bool force = out.force();
  Laps laps;
  const Library library = load_library(params.library);
  SubjectFiles files;
  Subject subject = load_subject(params.subject_dir, &files);
  laps.lap("subject loaded");
  const MniMap map = MniMap::load(params.subject_dir);
  subject.mni_to_subject = [&map](const Eigen::Vector3d& p) { return map.to_subject(p); };
  subject.subject_to_mni = [&map](const Eigen::Vector3d& p) { return map.to_mni(p); };
  laps.lap("MNI map loaded");
  const Scalp scalp(subject.head);
  laps.lap("scalp model");

  std::vector<Pick> picks;
  for (const auto& req : params.requests) {
    try {
      picks.push_back(pick(subject, scalp, library, req, params.options));
    } catch (const std::exception&) {
      rethrow_with_context("cannot place target '" + req.name + "'");
    }
  }
  add_classical_positions(subject, scalp, library, params.options, picks);
  laps.lap("targets placed");

  const auto doc = targets_document(picks, subject.grid, files, params.options.hair_offset_mm);
  write_file_atomic(params.output, doc.dump(2) + "\n", force);
  write_file_atomic(out.path("qc"), qc_png(subject, picks), force);
  laps.lap("QC figure");
  fill_record(params, out, picks, record);
  return picks;
}

std::string summary_table(const std::vector<Pick>& picks) {
  std::string text = "name\tcortical_ras\tscalp_ras\tscalp_to_cortex_mm\n";
  for (const auto& p : picks) {
    char row[256];
    std::snprintf(row, sizeof row, "\t%.1f,%.1f,%.1f\t%.1f,%.1f,%.1f\t%.1f\n", p.cortical[0], p.cortical[1],
                  p.cortical[2], p.scalp[0], p.scalp[1], p.scalp[2], p.scalp_to_cortex_mm);
    text += p.name + row;
  }
  return text;
}

}  // namespace tmsplan::targets
