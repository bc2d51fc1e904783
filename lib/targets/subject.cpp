#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/resample.hpp"
#include "tmsplan/targets.hpp"
#include "tmsplan/version.hpp"

namespace fs = std::filesystem;

namespace tmsplan::targets {
namespace {
void check_grid(const Image& im, const Grid& grid, const std::string& path) {
  if (!im.grid.same_as(grid, 1e-2)) throw Error("not on the grid of the subject's T1", path);
}
}  // namespace

Subject load_subject(const std::string& dir, SubjectFiles* files) {
  Subject s;
  const std::string t1_path = dir + "/t1w_biascorr.nii.gz";
  check_input_path(t1_path);
  const std::string ba = dir + "/atlas_brodmann.nii.gz";
  const bool have_ba = fs::exists(ba);
  // segment's grey-matter fraction: the snap weighs it (a sub-voxel field); without it, dseg == 2.
  const std::string probability = dir + "/probseg_gm.nii.gz";
  const bool have_probability = fs::exists(probability);
  // The files are independent: read them side by side, check the grids afterwards (in this order).
  ReadOptions ro;
  ro.refuse_constant = false;
  Image dseg, labels;
  parallel_tasks({[&] { s.t1 = read_image(t1_path); }, [&] { s.head = read_mask(dir + "/head_mask.nii.gz"); },
                  [&] { s.brain = read_mask(dir + "/brain_mask.nii.gz"); },
                  [&] { dseg = read_image(dir + "/dseg.nii.gz", ro); },
                  [&] {
                    if (have_ba) labels = read_image(ba, ro);
                  },
                  [&] {
                    if (have_probability) s.gm_probability = read_image(probability, ro);
                  }});
  s.grid = s.t1.grid;
  for (const auto& [mask, name] :
       {std::pair<const Mask*, const char*>{&s.head, "/head_mask.nii.gz"}, {&s.brain, "/brain_mask.nii.gz"}})
    if (!mask->grid.same_as(s.grid, 1e-2))
      throw Error("mask is not on the grid of the image it belongs to (dimensions or world position differ)",
                  dir + name);
  check_grid(dseg, s.grid, dir + "/dseg.nii.gz");
  s.gm = Mask(s.grid, 0);
  parallel_for(std::int64_t(dseg.data.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::size_t i = std::size_t(b); i < std::size_t(e); ++i)
      s.gm.data[i] = dseg.data[i] >= 1.5f && dseg.data[i] < 2.5f ? 1 : 0;  // lround(v) == 2
  });
  if (std::find(s.gm.data.begin(), s.gm.data.end(), std::uint8_t(1)) == s.gm.data.end())
    throw Error("no grey matter (label 2) in the segmentation", dir + "/dseg.nii.gz");
  if (have_probability) {
    check_grid(s.gm_probability, s.grid, probability);
    // segment writes tissue fractions: anything else is not a probability.
    const auto bad = std::find_if(s.gm_probability.data.begin(), s.gm_probability.data.end(),
                                  [](float v) { return !(v >= -1e-3f && v <= 1.001f); });
    if (bad != s.gm_probability.data.end()) {
      const auto at = std::int64_t(bad - s.gm_probability.data.begin());
      const auto nx = s.grid.dim[0], ny = s.grid.dim[1];
      throw Error(fmt::format("grey-matter fraction {} at voxel ({}, {}, {}) is not within 0..1", *bad, at % nx,
                              (at / nx) % ny, at / (nx * ny)),
                  probability);
    }
  }
  if (have_ba) {
    check_grid(labels, s.grid, ba);
    s.brodmann = Labels(s.grid, 0);
    parallel_for(std::int64_t(labels.data.size()), [&](std::int64_t b, std::int64_t e) {
      for (std::size_t i = std::size_t(b); i < std::size_t(e); ++i)
        s.brodmann.data[i] = static_cast<std::uint8_t>(std::clamp(labels.data[i] + 0.5f, 0.0f, 255.0f));
    });
  }
  if (files) {
    files->dir = dir;
    files->reference_t1 = t1_path;
    const std::string record = dir + "/skull_strip.json";
    if (fs::exists(record)) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(record, 16u << 20));
      } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("not valid JSON: ") + e.what(), record);
      }
      if (j.is_object() && j.contains("inputs") && j["inputs"].is_object() && j["inputs"].contains("t1")) {
        const auto& t1 = j["inputs"]["t1"];
        if (!t1.is_object() || (t1.contains("path") && !t1["path"].is_string()) ||
            (t1.contains("sha256") && !t1["sha256"].is_string()))
          throw Error("field 'inputs.t1' must be an object with string 'path' and 'sha256'", record);
        files->reference_t1 = t1.value("path", t1_path);
        files->reference_sha256 = t1.value("sha256", "");
      }
    }
    if (files->reference_sha256.empty()) files->reference_sha256 = sha256_file(files->reference_t1);
  }
  return s;
}

nlohmann::json targets_document(const std::vector<Pick>& picks, const Grid& grid, const SubjectFiles& files,
                                double hair_offset_mm) {
  nlohmann::json vox2ras = nlohmann::json::array();
  for (int r = 0; r < 4; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int c = 0; c < 4; ++c) row.push_back(grid.vox2ras.m(r, c));
    vox2ras.push_back(row);
  }
  nlohmann::json doc = {
      {"schema", "tmsplan-targets/1"},
      {"tool", "target-pick"},
      {"version", kVersion},
      {"reference_t1",
       {{"path", files.reference_t1}, {"sha256", files.reference_sha256}, {"dim", grid.dim}, {"vox2ras", vox2ras}}},
      {"space", "subject RAS+ (NIfTI world frame of reference_t1)"},
      {"units", "mm"},
      {"coil_convention",
       "SimNIBS: coil z into the head (minus the scalp normal), y along the handle axis pointing to the handle "
       "(handle_direction_ras), x = y cross z; coil_pose_ras columns are x, y, z, centre"},
      {"hair_offset_mm", hair_offset_mm},
      {"targets", nlohmann::json::array()}};
  for (const auto& p : picks) doc["targets"].push_back(p.to_json());
  return doc;
}

}  // namespace tmsplan::targets
