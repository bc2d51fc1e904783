// The JSON record of a run (include/tmsplan/provenance.hpp): in io, since it hashes and writes files.
#include "tmsplan/provenance.hpp"

#include <filesystem>

#include "tmsplan/files.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/version.hpp"

namespace tmsplan {

Record::Record(std::string tool, int argc, char** argv) : start_seconds_(now_seconds()) {
  json_["tool"] = std::move(tool);
  json_["version"] = kVersion;
  nlohmann::json cmd = nlohmann::json::array();
  for (int i = 0; i < argc; ++i) cmd.push_back(argv[i]);
  json_["command_line"] = cmd;
  json_["inputs"] = nlohmann::json::object();
  json_["outputs"] = nlohmann::json::object();
  json_["parameters"] = nlohmann::json::object();
  json_["figures"] = nlohmann::json::object();
  json_["coordinates"] = "world RAS+ mm of the input T1 (NIfTI frame) unless a field says MNI";
}

void Record::add_input(const std::string& role, const std::string& path) { add_inputs({{role, path}}); }

void Record::add_inputs(const std::vector<std::pair<std::string, std::string>>& inputs) {
  std::vector<std::string> hashes(inputs.size());
  std::vector<std::function<void()>> tasks;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    tasks.push_back([&, i] { hashes[i] = sha256_file(inputs[i].second); });
  parallel_tasks(tasks);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    json_["inputs"][inputs[i].first] = {{"path", std::filesystem::absolute(inputs[i].second).string()},
                                        {"sha256", hashes[i]}};
}

void Record::add_output(const std::string& role, const std::string& path) { json_["outputs"][role] = {{"path", path}}; }

void Record::write(const std::string& path, bool force) {
  // Output hashes side by side (the files are independent).
  std::vector<nlohmann::json*> outs;
  for (auto& [role, out] : json_["outputs"].items()) outs.push_back(&out);
  std::vector<std::string> hashes(outs.size());
  std::vector<std::function<void()>> tasks;
  for (std::size_t i = 0; i < outs.size(); ++i)
    tasks.push_back([&, i] {
      const std::string p = (*outs[i])["path"];
      std::error_code ec;
      if (std::filesystem::is_regular_file(p, ec)) hashes[i] = sha256_file(p);
    });
  parallel_tasks(tasks);
  for (std::size_t i = 0; i < outs.size(); ++i)
    if (!hashes[i].empty()) (*outs[i])["sha256"] = hashes[i];
  json_["time"] = {{"finished_utc", utc_timestamp()},
                   {"wall_seconds", now_seconds() - start_seconds_},
                   {"peak_memory_mib", peak_memory_mib()},
                   {"threads", threads()}};
  write_file_atomic(path, json_.dump(2) + "\n", force);
}

}  // namespace tmsplan
