#include <filesystem>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/resample.hpp"
#include "tmsplan/targets.hpp"
#include "tmsplan/version.hpp"

namespace fs = std::filesystem;

namespace tmsplan::targets {
namespace {
Image read_on(const std::string& path, const Grid& grid) {
  ReadOptions ro;
  ro.refuse_constant = false;
  Image im = read_image(path, ro);
  if (!im.grid.same_as(grid, 1e-2)) throw Error("not on the grid of the subject's T1", path);
  return im;
}
}  // namespace

Subject load_subject(const std::string& dir, SubjectFiles* files) {
  Subject s;
  const std::string t1_path = dir + "/t1w_biascorr.nii.gz";
  check_input_path(t1_path);
  ReadOptions ro;
  const Image t1 = read_image(t1_path, ro);
  s.grid = t1.grid;
  s.head = read_mask(dir + "/head_mask.nii.gz", &s.grid);
  s.brain = read_mask(dir + "/brain_mask.nii.gz", &s.grid);
  const Image dseg = read_on(dir + "/dseg.nii.gz", s.grid);
  s.gm = Mask(s.grid, 0);
  std::size_t gm = 0;
  for (std::size_t i = 0; i < dseg.data.size(); ++i) gm += (s.gm.data[i] = std::lround(dseg.data[i]) == 2 ? 1 : 0);
  if (gm == 0) throw Error("no grey matter (label 2) in the segmentation", dir + "/dseg.nii.gz");
  const std::string depth = dir + "/gyral_depth.nii.gz";
  s.gyral_depth = fs::exists(depth) ? read_on(depth, s.grid) : distance_to(mask_not(close(s.brain, 10.0)));
  const std::string ba = dir + "/atlas_brodmann.nii.gz";
  if (fs::exists(ba)) {
    const Image labels = read_on(ba, s.grid);
    s.brodmann = Labels(s.grid, 0);
    for (std::size_t i = 0; i < labels.data.size(); ++i)
      s.brodmann.data[i] = static_cast<std::uint8_t>(std::clamp(std::lround(labels.data[i]), 0L, 255L));
  }
  if (files) {
    files->dir = dir;
    files->reference_t1 = t1_path;
    const std::string record = dir + "/skull_strip.json";
    if (fs::exists(record)) {
      const auto j = nlohmann::json::parse(read_file(record));
      if (j.contains("inputs") && j["inputs"].contains("t1")) {
        files->reference_t1 = j["inputs"]["t1"].value("path", t1_path);
        files->reference_sha256 = j["inputs"]["t1"].value("sha256", "");
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
      {"reference_t1", {{"path", files.reference_t1}, {"sha256", files.reference_sha256}, {"dim", grid.dim}, {"vox2ras", vox2ras}}},
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
