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

#include "../io/nifti_header.hpp"
#include "internal.hpp"
#include "tmsplan/clock.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/navigators.hpp"
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
  const detail::QformRotation r = detail::qform_rotation(grid.vox2ras.m.topLeftCorner<3, 3>());
  nav::AntImageInfo info;
  info.quatern = {r.q.x(), r.q.y(), r.q.z()};
  info.qoffset = {grid.vox2ras.m(0, 3), grid.vox2ras.m(1, 3), grid.vox2ras.m(2, 3)};
  info.pixdim = {r.qfac, r.spacing[0], r.spacing[1], r.spacing[2]};
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

}  // namespace

Result export_plan(const Params& params, Record& record) {
  // ---- Inputs and outputs, before any work -------------------------------------------------------
  if (params.targets_path.empty()) throw UsageError("--targets is required");
  if (params.t1_path.empty()) throw UsageError("--t1 is required");
  if (params.protocol.empty()) throw UsageError("--protocol is required");
  if (params.out_dir.empty()) throw UsageError("-o/--out-dir is required");
  check_input_path(params.targets_path);
  check_input_path(params.t1_path);
  const std::string subject_dir =
      params.subject_dir.empty() ? fs::absolute(params.targets_path).parent_path().string() : params.subject_dir;
  if (!fs::is_directory(subject_dir)) throw Error("subject folder does not exist", subject_dir);
  std::string head_path = params.head_mask_path;
  if (head_path.empty() && fs::is_regular_file(fs::path(subject_dir) / "head_mask.nii.gz"))
    head_path = (fs::path(subject_dir) / "head_mask.nii.gz").string();
  if (!head_path.empty()) check_input_path(head_path);
  const bool protocol_is_file = ends_with(params.protocol, ".json") || params.protocol.find('/') != std::string::npos;
  if (protocol_is_file) check_input_path(params.protocol);

  if (!fs::is_directory(params.out_dir)) throw Error("output folder does not exist", params.out_dir);
  const fs::path plan_dir = fs::path(params.out_dir) / "plan";
  std::error_code ec;
  if (fs::exists(plan_dir, ec) && !fs::is_directory(plan_dir, ec)) throw Error("exists and is not a folder", plan_dir);
  const bool plan_dir_exists = fs::is_directory(plan_dir, ec);
  // The Localite names depend on the plan (checked once the files are built); the others now.
  std::map<std::string, std::string> out_path;
  const std::vector<std::string> fixed_names = [] {
    std::vector<std::string> names = output_names("20000101000000000");
    names.erase(names.begin(), names.begin() + 2);
    return names;
  }();
  for (const auto& name : fixed_names) {
    out_path[name] = (plan_dir / name).string();
    if (plan_dir_exists) check_output_path(out_path[name], params.force);
  }
  if (!plan_dir_exists) {
    if (::access(params.out_dir.c_str(), W_OK) != 0) throw Error("output folder is not writable", params.out_dir);
  }

  // ---- Targets, protocol, safety ---------------------------------------------------------------
  const Targets all = load_targets(params.targets_path);
  const std::vector<const Target*> selected = select_targets(all, params.target_names, params.targets_path);
  const std::vector<protocol::Protocol> presets = protocol::load_presets();
  const protocol::Protocol proto =
      protocol_is_file ? protocol::load_protocol(params.protocol) : protocol::find_preset(presets, params.protocol);
  const protocol::SafetyTable table = protocol::load_safety_table();
  const protocol::SafetyResult safety = protocol::check_protocol(table, proto);
  std::vector<std::string> warnings;
  for (const auto& n : all.notes) warnings.push_back(params.targets_path + ": " + n);
  // --strict refuses a protocol that breaks the train-duration rule or the inter-train interval
  // rule, or that cannot be checked against either.
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
    if (const std::string note = guideline_at(proto, t->name); !note.empty()) warnings.push_back(note);
  const std::vector<TargetDose> doses =
      compute_doses(all, selected, proto, params.rmt_pct_mso, params.m1_target, warnings);

  // ---- Images ----------------------------------------------------------------------------------
  ImageInfo t1_info;
  const Image t1 = read_image(params.t1_path, {}, &t1_info);
  Grid ref_grid;
  ref_grid.dim = all.reference_t1.dim;
  ref_grid.vox2ras = all.reference_t1.vox2ras;
  if (!t1.grid.same_as(ref_grid, 1e-3)) {
    throw Error(fmt::format("the T1 is not the reference T1 of {} ({}): its grid ({}x{}x{}) or world position differs "
                            "from the one the targets refer to ({}x{}x{})",
                            params.targets_path, all.reference_t1.path, t1.grid.dim[0], t1.grid.dim[1], t1.grid.dim[2],
                            ref_grid.dim[0], ref_grid.dim[1], ref_grid.dim[2]),
                params.t1_path);
  }
  const std::string t1_sha = sha256_file(params.t1_path);
  const bool sha_matches = t1_sha == all.reference_t1.sha256;
  if (!sha_matches)
    warnings.push_back(fmt::format("the T1's sha256 differs from the reference in {} (same grid, so the same world "
                                   "frame: accepted; check it is the same scan)",
                                   params.targets_path));
  for (const auto& w : t1_info.warnings) warnings.push_back(params.t1_path + ": " + w);
  Mask head;
  if (!head_path.empty()) {
    head = read_mask(head_path, &t1.grid);
  } else {
    warnings.push_back("no head mask (--head-mask or SUBJECT_DIR/head_mask.nii.gz): the scalp rendering uses a "
                       "threshold of the T1");
    head = head_from_t1(t1);
  }

  // ---- Record ----------------------------------------------------------------------------------
  record.add_input("targets", params.targets_path);
  record.add_input("t1", params.t1_path);
  if (!head_path.empty()) record.add_input("head_mask", head_path);
  if (protocol_is_file) record.add_input("protocol", params.protocol);
  record.parameters() = {{"protocol", params.protocol},
                         {"targets", params.target_names},
                         {"rmt_pct_mso", params.rmt_pct_mso ? json(*params.rmt_pct_mso) : json(nullptr)},
                         {"m1", params.m1_target},
                         {"localite_lps", params.localite_lps},
                         {"strict", params.strict},
                         {"subject_dir", subject_dir},
                         {"dose_factor_pct_mso_per_mm", kDoseFactorPctMsoPerMm}};

  // ---- Navigator files (text, in memory) -------------------------------------------------------
  std::vector<nav::Marker> markers;
  std::vector<nav::EntryTarget> entry_targets;
  std::vector<nav::TargetProtocol> rows;
  for (const Target* t : selected) {
    markers.push_back({t->name, t->coil_pose, t->scalp_ras, t->cortical_ras});
    entry_targets.push_back({t->name, t->scalp_ras, t->cortical_ras});
    rows.push_back({t->name, proto});
  }
  std::map<std::string, std::string> text;
  nav::LocaliteWriteOptions lo;
  lo.space = params.localite_lps ? nav::LocaliteSpace::lps : nav::LocaliteSpace::ras;
  const std::string im_xml = nav::write_localite_instrument_markers(markers, lo);
  const std::string et_xml = nav::write_localite_entry_targets(entry_targets, lo);
  const std::string stamp = nav::localite_timestamp(im_xml + et_xml);
  const std::vector<std::string> names = output_names(stamp);
  const std::string &im_name = names[0], &et_name = names[1];
  text[im_name] = im_xml;
  text[et_name] = et_xml;
  // Localite files of another plan in the folder would be read as this plan's: refuse them
  // without --force, remove them with it (after this plan's files are committed).
  std::vector<fs::path> stale;
  for (const auto& name : {im_name, et_name}) {
    out_path[name] = (plan_dir / name).string();
    if (plan_dir_exists) check_output_path(out_path[name], params.force);
  }
  if (plan_dir_exists)
    for (const auto& e : fs::directory_iterator(plan_dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n == im_name || n == et_name ||
          !(nav::is_localite_name(n, "InstrumentMarker") || nav::is_localite_name(n, "EntryTarget")))
        continue;
      if (!params.force)
        throw Error("holds the Localite file of another plan (use --force to replace it)", e.path().string());
      stale.push_back(e.path());
    }
  nav::BrainsightWriteOptions b12;
  b12.version = 12;
  b12.coordinate_system = "NIfTI:Aligned";
  b12.created_by = std::string("tmsplan ") + kVersion;
  text["brainsight_v12.txt"] = nav::write_brainsight_targets(markers, b12);
  nav::BrainsightWriteOptions b14 = b12;
  b14.version = 14;
  b14.coordinate_system = "NIfTI:Q:Aligned";
  text["brainsight_v14.txt"] = nav::write_brainsight_targets(markers, b14);
  nav::AntWriteOptions ao;
  ao.image = ant_image_info(t1.grid);
  ao.app_version = std::string("tmsplan ") + kVersion;
  text["ant_markers.mrk"] = nav::write_ant_markers(markers, ao);
  text["markers.tsv"] = nav::write_markers_tsv(markers);
  text["tms.tsv"] = nav::write_tms_tsv(rows);

  PlanSummary summary{params,    all,    selected,    proto,           table, safety, doses,   subject_dir,
                      head_path, t1_sha, sha_matches, utc_timestamp(), {},    names,  im_name, et_name};
  text["protocol.json"] = protocol_json(summary, warnings);

  // ---- Write: stage everything beside its target, then commit all together ----------------------
  bool created_dir = false;
  if (!plan_dir_exists) {
    if (!fs::create_directory(plan_dir, ec)) throw Error("cannot create the plan folder", plan_dir);
    created_dir = true;
  }
  std::vector<std::string> committed;
  try {
    std::vector<Staged> staged;
    {
      auto nii = std::make_unique<AtomicFile>(out_path["t1w_navigator.nii.gz"], params.force);
      WriteOptions wo;
      wo.force = true;  // over our own empty temporary file
      wo.type = fits_int16(t1) ? DiskType::Int16 : DiskType::Float32;
      wo.description = "tmsplan navigator T1 (qform = sform)";
      // write_image picks gzip by the name's extension: stage under a .nii.gz name first.
      const std::string staging =
          (plan_dir / fmt::format(".t1w_navigator.staging.{}.nii.gz", static_cast<long>(::getpid()))).string();
      write_image(staging, t1, wo);
      fs::rename(staging, nii->temp_path(), ec);
      if (ec) {
        fs::remove(staging, ec);
        throw Error("cannot stage the navigator T1", nii->temp_path());
      }
      summary.file_sha["t1w_navigator.nii.gz"] = sha256_file(nii->temp_path());
      staged.push_back({std::move(nii), "t1w_navigator.nii.gz"});
    }
    for (const auto& [name, bytes] : text) summary.file_sha[name] = sha256_bytes(bytes);

    log::info("rendering the report");
    text["report.html"] = build_report(summary, t1, head, record.json(), warnings);

    for (const auto& [name, bytes] : text) {
      auto f = std::make_unique<AtomicFile>(out_path[name], params.force);
      write_bytes(f->temp_path(), bytes);
      staged.push_back({std::move(f), name});
    }
    for (auto& s : staged) {
      s.file->commit();
      committed.push_back(out_path[s.name]);
    }
    for (const auto& name : names)
      if (name != "protocol_export.json") record.add_output(name, out_path[name]);
    json figures = json::object();
    figures["safety_verdict"] = protocol::to_string(safety.verdict);
    for (const auto& d : doses) {
      figures["dose"][d.target] = {
          {"scalp_to_cortex_mm", d.d_target_mm},
          {"mt_target_pct_mso", d.mt_target_pct_mso ? json(*d.mt_target_pct_mso) : json(nullptr)},
          {"intensity_pct_mso", d.intensity_pct_mso ? json(*d.intensity_pct_mso) : json(nullptr)}};
    }
    figures["warnings"] = warnings;
    record.figures() = figures;
    record.write(out_path["protocol_export.json"], params.force);
    committed.push_back(out_path["protocol_export.json"]);
  } catch (...) {
    for (const auto& p : committed) fs::remove(p, ec);
    if (created_dir) fs::remove(plan_dir, ec);  // only when empty
    throw;
  }
  for (const auto& p : stale) {
    fs::remove(p, ec);
    if (ec)
      warnings.push_back(fmt::format("{}: the Localite file of an earlier plan could not be removed", p.string()));
    else
      log::info("removed the Localite file of an earlier plan: " + p.string());
  }
  for (const auto& w : warnings) log::warn(w);
  return {plan_dir.string(), committed, warnings};
}

}  // namespace tmsplan::plan
