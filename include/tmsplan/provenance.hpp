#pragma once
/// The JSON record every tool writes: tool, version, command line, inputs with sha256, outputs,
/// parameters, the step's figures, time.
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "tmsplan/clock.hpp"  // now_seconds, used with a Record by most steps

namespace tmsplan {

class Record {
 public:
  Record(std::string tool, int argc, char** argv);
  void add_input(const std::string& role, const std::string& path);
  /// Several inputs at once, hashed side by side (role, path).
  void add_inputs(const std::vector<std::pair<std::string, std::string>>& inputs);
  void add_output(const std::string& role, const std::string& path);
  nlohmann::json& parameters() { return json_["parameters"]; }
  nlohmann::json& figures() { return json_["figures"]; }
  nlohmann::json& json() { return json_; }
  /// Adds timing and output hashes, then writes atomically. The "time" fields are the only ones
  /// that change between identical runs.
  void write(const std::string& path, bool force);

 private:
  nlohmann::json json_;
  double start_seconds_;
};

}  // namespace tmsplan
