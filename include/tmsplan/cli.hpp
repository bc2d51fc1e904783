#pragma once
/// The shared tool runner: standard options, one error format, exit codes.
///   tool: error: <what> (<file>): <cause>      on stderr
///   exit 0 success, 1 failure, 2 usage error
#include <CLI/CLI.hpp>
#include <Eigen/Core>

#include <functional>
#include <string>

namespace tmsplan::cli {

/// Options every tool has.
struct Common {
  bool quiet = false;
  bool verbose = false;
  bool force = false;
  int threads = 0;  ///< 0: all cores
};

class Tool {
 public:
  Tool(std::string name, std::string description);
  CLI::App& app() { return app_; }
  const Common& common() const { return common_; }
  const std::string& name() const { return name_; }
  /// Parses argv, applies the common options, runs body; returns the exit code.
  int run(int argc, char** argv, const std::function<void()>& body);

 private:
  std::string name_;
  CLI::App app_;
  Common common_;
};

/// Parses "x,y,z" (commas or spaces) into three finite numbers; throws UsageError.
Eigen::Vector3d parse_triple(const std::string& text, const std::string& option);

}  // namespace tmsplan::cli
