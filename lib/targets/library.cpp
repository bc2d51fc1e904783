#include <cmath>

#include "tmsplan/data.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/targets.hpp"

namespace tmsplan::targets {

std::string default_library_path() { return data_path("targets.json"); }

const LibraryEntry* Library::find(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

namespace {
Eigen::Vector3d vec3(const nlohmann::json& j, const std::string& field, const std::string& path) {
  if (!j.is_array() || j.size() != 3) throw Error("field '" + field + "' must be three numbers", path);
  Eigen::Vector3d v;
  for (int i = 0; i < 3; ++i) {
    if (!j[std::size_t(i)].is_number()) throw Error("field '" + field + "' must be three numbers", path);
    v[i] = j[std::size_t(i)].get<double>();
    if (!std::isfinite(v[i]) || std::abs(v[i]) > 200) throw Error("field '" + field + "' is out of range", path);
  }
  return v;
}
std::string text(const nlohmann::json& j, const char* field, const std::string& path, bool required = true) {
  if (!j.contains(field)) {
    if (required) throw Error(std::string("missing field '") + field + "'", path);
    return {};
  }
  if (!j[field].is_string()) throw Error(std::string("field '") + field + "' must be a string", path);
  return j[field].get<std::string>();
}
}  // namespace

std::vector<std::string> library_names(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& e : load_library(path).entries) names.push_back(e.name);
  return names;
}

Library load_library(const std::string& path_in) {
  const std::string path = path_in.empty() ? default_library_path() : path_in;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path, 4u << 20));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), path);
  }
  if (!j.is_object() || j.value("schema", "") != "tmsplan-target-library/1")
    throw Error("not a tmsplan target library (schema tmsplan-target-library/1)", path);
  Library lib;
  if (!j.contains("targets") || !j["targets"].is_array()) throw Error("missing array 'targets'", path);
  for (const auto& t : j["targets"]) {
    if (!t.is_object()) throw Error("every entry of 'targets' must be an object", path);
    LibraryEntry e;
    e.name = text(t, "name", path);
    e.description = text(t, "description", path);
    e.source = text(t, "source", path);
    e.kind = text(t, "kind", path);
    e.hemisphere = text(t, "hemisphere", path);
    e.refine = text(t, "refine", path, false);
    e.handle_rule = text(t, "handle_rule", path);
    e.handle_note = text(t, "handle_note", path, false);
    e.mni = vec3(t.value("mni", nlohmann::json()), e.name + ".mni", path);
    if (t.contains("atlas_label")) {
      if (!t["atlas_label"].is_object()) throw Error("field '" + e.name + ".atlas_label' must be an object", path);
      for (const auto& [atlas, label] : t["atlas_label"].items()) {
        if (!label.is_number_integer() || label.get<long long>() < 0 || label.get<long long>() > 255)
          throw Error("field '" + e.name + ".atlas_label." + atlas + "' must be a label number 0-255", path);
        e.atlas_label[atlas] = label.get<int>();
      }
    }
    if (lib.find(e.name)) throw Error("target '" + e.name + "' is listed twice", path);
    lib.entries.push_back(e);
  }
  if (j.contains("eeg")) {
    const auto& eeg = j["eeg"];
    if (!eeg.is_object()) throw Error("field 'eeg' must be an object", path);
    lib.eeg_source = text(eeg, "source", path);
    for (const char* field : {"positions_mni", "fiducials_mni"})
      if (!eeg.contains(field) || !eeg[field].is_object())
        throw Error(std::string("field 'eeg.") + field + "' must be an object", path);
    for (const auto& [name, v] : eeg["positions_mni"].items()) lib.eeg_mni[name] = vec3(v, "eeg." + name, path);
    for (const auto& [name, v] : eeg["fiducials_mni"].items())
      lib.fiducials_mni[name] = vec3(v, "fiducial " + name, path);
  }
  return lib;
}

}  // namespace tmsplan::targets
