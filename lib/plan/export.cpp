// protocol-export as a library call: checks every input and output first, builds all files in
// memory (the navigator T1 in a temporary file beside its target), then commits them together.
#include <fmt/format.h>

#include <Eigen/Geometry>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <unistd.h>

#include "internal.hpp"
#include "tmsplan/clock.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/navigators.hpp"
#include "tmsplan/nifti_info.hpp"
#include "tmsplan/plan.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/version.hpp"

namespace tmsplan::plan {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> output_names(const std::string& localite_stamp) {
  return {nav::localite_instrument_marker_name(localite_stamp),
          nav::localite_entry_target_name(localite_stamp),
          "brainsight_v12.txt",
          "brainsight_v14.txt",
          "ant_markers.mrk",
          "markers.tsv",
          "tms.tsv",
          "protocol.json",
          "t1w_navigator.nii.gz",
          "report.html",
          "protocol_export.json"};
}

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The qform fields write_image puts in the header (nearest rotation, qfac for a left-handed grid).
nav::AntImageInfo ant_image_info(const Grid& grid) {
  const NiftiQform q = nifti_qform(grid.vox2ras.m.topLeftCorner<3, 3>());
  nav::AntImageInfo info;
  info.quatern = {q.quatern[0], q.quatern[1], q.quatern[2]};
  info.qoffset = {grid.vox2ras.m(0, 3), grid.vox2ras.m(1, 3), grid.vox2ras.m(2, 3)};
  info.pixdim = {q.qfac, q.spacing[0], q.spacing[1], q.spacing[2]};
  return info;
}

// Integer-valued voxels that fit int16 are written as int16 (the navigator copy stays small).
bool fits_int16(const Image& image) {
  for (float v : image.data)
    if (v != std::nearbyint(v) || v < -32768.0f || v > 32767.0f) return false;
  return true;
}

// A head mask from the T1 alone, for the scalp rendering when none is given.
Mask head_from_t1(const Image& t1) {
  const double threshold = 0.5 * otsu_threshold(t1);
  Mask m(t1.grid, 0);
  for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = t1.data[i] > threshold ? 1 : 0;
  return fill_holes(close(largest_component(m), 3.0));
}

std::vector<const Target*> select_targets(const Targets& all, const std::vector<std::string>& names,
                                          const std::string& source) {
  std::vector<const Target*> out;
  if (names.empty()) {
    for (const auto& t : all.targets) out.push_back(&t);
    return out;
  }
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (!seen.insert(n).second) throw UsageError(fmt::format("--target {} is given twice", n));
    const Target* found = nullptr;
    for (const auto& t : all.targets)
      if (t.name == n) found = &t;
    if (!found) {
      std::string known;
      for (const auto& t : all.targets) known += (known.empty() ? "" : ", ") + t.name;
      throw Error(fmt::format("target '{}' is not in the file (it has: {})", n, known), source);
    }
    out.push_back(found);
  }
  return out;
}

struct Staged {
  std::unique_ptr<AtomicFile> file;
  std::string name;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  if (!out) throw Error("cannot write (disk full?)", path);
}

// Where the plan reads and writes, checked before any work.
struct Places {
  std::string subject_dir;
  std::string head_path;  // empty: no head mask (thresholded from the T1)
  bool protocol_is_file = false;
  fs::path plan_dir;
  bool plan_dir_exists = false;
  std::map<std::string, std::string> out_path;  // plan file name -> full path
};

Places check_places(const Params& params) {
  if (params.targets_path.empty()) throw UsageError("--targets is required");
  if (params.t1_path.empty()) throw UsageError("--t1 is required");
  if (params.protocol.empty()) throw UsageError("--protocol is required");
  if (params.out_dir.empty()) throw UsageError("-o/--out-dir is required");
  check_input_path(params.targets_path);
  check_input_path(params.t1_path);
  Places at;
  at.subject_dir =
      params.subject_dir.empty() ? fs::absolute(params.targets_path).parent_path().string() : params.subject_dir;
  if (!fs::is_directory(at.subject_dir)) throw Error("subject folder does not exist", at.subject_dir);
  at.head_path = params.head_mask_path;
  if (at.head_path.empty() && fs::is_regular_file(fs::path(at.subject_dir) / "head_mask.nii.gz"))
    at.head_path = (fs::path(at.subject_dir) / "head_mask.nii.gz").string();
  if (!at.head_path.empty()) check_input_path(at.head_path);
  at.protocol_is_file = ends_with(params.protocol, ".json") || params.protocol.find('/') != std::string::npos;
  if (at.protocol_is_file) check_input_path(params.protocol);

  if (!fs::is_directory(params.out_dir)) throw Error("output folder does not exist", params.out_dir);
  at.plan_dir = fs::path(params.out_dir) / "plan";
  std::error_code ec;
  if (fs::exists(at.plan_dir, ec) && !fs::is_directory(at.plan_dir, ec))
    throw Error("exists and is not a folder", at.plan_dir);
  at.plan_dir_exists = fs::is_directory(at.plan_dir, ec);
  // The Localite names depend on the plan (checked once the files are built); the others now.
  std::vector<std::string> fixed_names = output_names("20000101000000000");
  fixed_names.erase(fixed_names.begin(), fixed_names.begin() + 2);
  for (const auto& name : fixed_names) {
    at.out_path[name] = (at.plan_dir / name).string();
    if (at.plan_dir_exists) check_output_path(at.out_path[name], params.force);
  }
  if (!at.plan_dir_exists && ::access(params.out_dir.c_str(), W_OK) != 0)
    throw Error("output folder is not writable", params.out_dir);
  return at;
}

// The protocol, its safety verdicts and the guideline at each target, as warnings (--strict
// refuses a protocol that breaks the train-duration or the inter-train interval rule, or that
// cannot be checked against either).
void check_safety(const Params& params, const std::vector<const Target*>& selected, const protocol::Protocol& proto,
                  const protocol::SafetyResult& safety, std::vector<std::string>& warnings) {
  for (const auto& [verdict, message] :
       {std::pair{safety.train_verdict, safety.message}, std::pair{safety.interval_verdict, safety.interval_message}}) {
    if (verdict == protocol::Verdict::exceeds) {
      if (params.strict) throw Error("safety check failed under --strict: " + message);
      warnings.push_back("SAFETY: " + message);
    } else if (verdict == protocol::Verdict::unknown) {
      if (params.strict) throw Error("safety cannot be confirmed under --strict: " + message);
      warnings.push_back("safety not confirmed: " + message);
    }
  }
  if (!protocol::is_complete(proto))
    warnings.push_back(fmt::format("protocol '{}' is incomplete (train structure not given by its source); take the "
                                   "trains from a trial preset before treatment",
                                   proto.id));
  for (const Target* t : selected)
    if (const std::string note = guideline_at(proto, *t); !note.empty()) warnings.push_back(note);
}

// The T1 (refused unless on the targets' reference grid; t1_sha: its sha256) and the head mask for
// the rendering.
struct Images {
  Image t1;
  Mask head;
  std::string t1_sha;
  bool sha_matches = false;
};

Images read_images(const Params& params, const Targets& all, const std::string& head_path, const std::string& t1_sha,
                   std::vector<std::string>& warnings) {
  Images im;
  ImageInfo t1_info;
  im.t1 = read_image(params.t1_path, {}, &t1_info);
  Grid ref_grid;
  ref_grid.dim = all.reference_t1.dim;
  ref_grid.vox2ras = all.reference_t1.vox2ras;
  if (!im.t1.grid.same_as(ref_grid, 1e-3)) {
    throw Error(fmt::format("the T1 is not the reference T1 of {} ({}): its grid ({}x{}x{}) or world position differs "
                            "from the one the targets refer to ({}x{}x{})",
                            params.targets_path, all.reference_t1.path, im.t1.grid.dim[0], im.t1.grid.dim[1],
                            im.t1.grid.dim[2], ref_grid.dim[0], ref_grid.dim[1], ref_grid.dim[2]),
                params.t1_path);
  }
  im.t1_sha = t1_sha;
  im.sha_matches = im.t1_sha == all.reference_t1.sha256;
  if (!im.sha_matches)
    warnings.push_back(fmt::format("the T1's sha256 differs from the reference in {} (same grid, so the same world "
                                   "frame: accepted; check it is the same scan)",
                                   params.targets_path));
  for (const auto& w : t1_info.warnings) warnings.push_back(params.t1_path + ": " + w);
  if (!head_path.empty()) {
    im.head = read_mask(head_path, &im.t1.grid);
  } else {
    warnings.push_back("no head mask (--head-mask or SUBJECT_DIR/head_mask.nii.gz): the scalp rendering uses a "
                       "threshold of the T1");
    im.head = head_from_t1(im.t1);
  }
  return im;
}

void record_inputs(const Params& params, const Places& at, Record& record) {
  record.add_input("targets", params.targets_path);
  record.add_input("t1", params.t1_path);
  if (!at.head_path.empty()) record.add_input("head_mask", at.head_path);
  if (at.protocol_is_file) record.add_input("protocol", params.protocol);
  record.parameters() = {{"protocol", params.protocol},
                         {"targets", params.target_names},
                         {"rmt_pct_mso", params.rmt_pct_mso ? json(*params.rmt_pct_mso) : json(nullptr)},
                         {"m1", params.m1_target},
                         {"localite_lps", params.localite_lps},
                         {"strict", params.strict},
                         {"subject_dir", at.subject_dir},
                         {"dose_factor_pct_mso_per_mm", kDoseFactorPctMsoPerMm}};
}

// The navigator files, in memory (file name -> bytes), and the plan's file names (the Localite
// names carry a stamp derived from their content).
struct NavigatorFiles {
  std::map<std::string, std::string> text;
  std::vector<std::string> names;
  std::vector<fs::path> stale;  // Localite files of another plan, removed after the commit
};

NavigatorFiles navigator_files(const Params& params, const std::vector<const Target*>& selected,
                               const protocol::Protocol& proto, const Grid& t1_grid, Places& at) {
  std::vector<nav::Marker> markers;
  std::vector<nav::EntryTarget> entry_targets;
  std::vector<nav::TargetProtocol> rows;
  for (const Target* t : selected) {
    markers.push_back({t->name, t->coil_pose, t->scalp_ras, t->cortical_ras});
    entry_targets.push_back({t->name, t->scalp_ras, t->cortical_ras});
    rows.push_back({t->name, proto});
  }
  NavigatorFiles nf;
  nav::LocaliteWriteOptions lo;
  lo.space = params.localite_lps ? nav::LocaliteSpace::lps : nav::LocaliteSpace::ras;
  const std::string im_xml = nav::write_localite_instrument_markers(markers, lo);
  const std::string et_xml = nav::write_localite_entry_targets(entry_targets, lo);
  nf.names = output_names(nav::localite_timestamp(im_xml + et_xml));
  const std::string &im_name = nf.names[0], &et_name = nf.names[1];
  nf.text[im_name] = im_xml;
  nf.text[et_name] = et_xml;
  // Localite files of another plan in the folder would be read as this plan's: refuse them
  // without --force, remove them with it (after this plan's files are committed).
  for (const auto& name : {im_name, et_name}) {
    at.out_path[name] = (at.plan_dir / name).string();
    if (at.plan_dir_exists) check_output_path(at.out_path[name], params.force);
  }
  std::error_code ec;
  if (at.plan_dir_exists)
    for (const auto& e : fs::directory_iterator(at.plan_dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n == im_name || n == et_name ||
          !(nav::is_localite_name(n, "InstrumentMarker") || nav::is_localite_name(n, "EntryTarget")))
        continue;
      if (!params.force)
        throw Error("holds the Localite file of another plan (use --force to replace it)", e.path().string());
      nf.stale.push_back(e.path());
    }
  nav::BrainsightWriteOptions b12;
  b12.version = 12;
  b12.coordinate_system = "NIfTI:Aligned";
  b12.created_by = std::string("tmsplan ") + kVersion;
  nf.text["brainsight_v12.txt"] = nav::write_brainsight_targets(markers, b12);
  nav::BrainsightWriteOptions b14 = b12;
  b14.version = 14;
  b14.coordinate_system = "NIfTI:Q:Aligned";
  nf.text["brainsight_v14.txt"] = nav::write_brainsight_targets(markers, b14);
  nav::AntWriteOptions ao;
  ao.image = ant_image_info(t1_grid);
  ao.app_version = std::string("tmsplan ") + kVersion;
  nf.text["ant_markers.mrk"] = nav::write_ant_markers(markers, ao);
  nf.text["markers.tsv"] = nav::write_markers_tsv(markers);
  nf.text["tms.tsv"] = nav::write_tms_tsv(rows);
  return nf;
}

// The navigator T1 written beside its target (write_image picks gzip by the name's extension, so
// it is staged under a .nii.gz name first, then moved over the AtomicFile's temporary file).
Staged stage_navigator_t1(const Params& params, const Places& at, const Image& t1, PlanSummary& summary) {
  std::error_code ec;
  auto nii = std::make_unique<AtomicFile>(at.out_path.at("t1w_navigator.nii.gz"), params.force);
  WriteOptions wo;
  wo.force = true;  // over our own empty temporary file
  wo.type = fits_int16(t1) ? DiskType::Int16 : DiskType::Float32;
  wo.description = "tmsplan navigator T1 (qform = sform)";
  const std::string staging =
      (at.plan_dir / fmt::format(".t1w_navigator.staging.{}.nii.gz", static_cast<long>(::getpid()))).string();
  write_image(staging, t1, wo);
  fs::rename(staging, nii->temp_path(), ec);
  if (ec) {
    fs::remove(staging, ec);
    throw Error("cannot stage the navigator T1", nii->temp_path());
  }
  summary.file_sha["t1w_navigator.nii.gz"] = sha256_file(nii->temp_path());
  return {std::move(nii), "t1w_navigator.nii.gz"};
}

json record_figures(const protocol::SafetyResult& safety, const std::vector<TargetDose>& doses,
                    const std::vector<std::string>& warnings) {
  json figures = json::object();
  figures["safety_verdict"] = protocol::to_string(safety.verdict);
  for (const auto& d : doses) {
    figures["dose"][d.target] = {
        {"scalp_to_cortex_mm", d.d_target_mm},
        {"mt_target_pct_mso", d.mt_target_pct_mso ? json(*d.mt_target_pct_mso) : json(nullptr)},
        {"intensity_pct_mso", d.intensity_pct_mso ? json(*d.intensity_pct_mso) : json(nullptr)}};
  }
  figures["warnings"] = warnings;
  return figures;
}

// Stages every file beside its target, then commits them together, the record last. On a failure
// the files committed so far and a plan folder created here are removed (a library caller has no
// tool runner to roll back for it). Returns the committed paths.
std::vector<std::string> write_plan(const Params& params, const Places& at, const Images& im,
                                    std::map<std::string, std::string>& text, PlanSummary& summary, Record& record,
                                    std::vector<std::string>& warnings) {
  std::error_code ec;
  bool created_dir = false;
  if (!at.plan_dir_exists) {
    if (!fs::create_directory(at.plan_dir, ec)) throw Error("cannot create the plan folder", at.plan_dir);
    created_dir = true;
  }
  std::vector<std::string> committed;
  try {
    std::vector<Staged> staged;
    staged.push_back(stage_navigator_t1(params, at, im.t1, summary));
    for (const auto& [name, bytes] : text) summary.file_sha[name] = sha256_bytes(bytes);

    log::info("rendering the report");
    text["report.html"] = build_report(summary, im.t1, im.head, record.json(), warnings);

    for (const auto& [name, bytes] : text) {
      auto f = std::make_unique<AtomicFile>(at.out_path.at(name), params.force);
      write_bytes(f->temp_path(), bytes);
      staged.push_back({std::move(f), name});
    }
    for (auto& s : staged) {
      s.file->commit();
      committed.push_back(at.out_path.at(s.name));
    }
    for (const auto& name : summary.file_names)
      if (name != "protocol_export.json") record.add_output(name, at.out_path.at(name));
    record.figures() = record_figures(summary.safety, summary.doses, warnings);
    record.write(at.out_path.at("protocol_export.json"), params.force);
    committed.push_back(at.out_path.at("protocol_export.json"));
  } catch (...) {
    for (const auto& p : committed) fs::remove(p, ec);
    if (created_dir) fs::remove(at.plan_dir, ec);  // only when empty
    throw;
  }
  return committed;
}

}  // namespace

Result export_plan(const Params& params, Record& record) {
  Places at = check_places(params);

  const Targets all = load_targets(params.targets_path);
  const std::vector<const Target*> selected = select_targets(all, params.target_names, params.targets_path);
  const std::vector<protocol::Protocol> presets = protocol::load_presets();
  const protocol::Protocol proto =
      at.protocol_is_file ? protocol::load_protocol(params.protocol) : protocol::find_preset(presets, params.protocol);
  const protocol::SafetyTable table = protocol::load_safety_table();
  const protocol::SafetyResult safety = protocol::check_protocol(table, proto);
  std::vector<std::string> warnings;
  for (const auto& n : all.notes) warnings.push_back(params.targets_path + ": " + n);
  check_safety(params, selected, proto, safety, warnings);
  const std::vector<TargetDose> doses =
      compute_doses(all, selected, proto, params.rmt_pct_mso, params.m1_target, warnings);

  record_inputs(params, at, record);  // hashes the T1 once, for the record and the report
  const Images im =
      read_images(params, all, at.head_path, record.json()["inputs"]["t1"]["sha256"].get<std::string>(), warnings);
  NavigatorFiles nav_files = navigator_files(params, selected, proto, im.t1.grid, at);
  const std::vector<std::string>& names = nav_files.names;
  PlanSummary summary{params,       all,       selected,       proto,           table, safety, doses,    at.subject_dir,
                      at.head_path, im.t1_sha, im.sha_matches, utc_timestamp(), {},    names,  names[0], names[1]};
  nav_files.text["protocol.json"] = protocol_json(summary, warnings);

  const std::vector<std::string> committed = write_plan(params, at, im, nav_files.text, summary, record, warnings);
  std::error_code ec;
  for (const auto& p : nav_files.stale) {
    fs::remove(p, ec);
    if (ec)
      warnings.push_back(fmt::format("{}: the Localite file of an earlier plan could not be removed", p.string()));
    else
      log::info("removed the Localite file of an earlier plan: " + p.string());
  }
  for (const auto& w : warnings) log::warn(w);
  return {at.plan_dir.string(), committed, warnings};
}

}  // namespace tmsplan::plan
