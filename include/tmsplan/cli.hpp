#pragma once
/// The shared tool runner: standard options, one error format, exit codes.
///   tool: error: <what> (<file>): <cause>      on stderr
///   exit 0 success, 1 failure, 2 usage error
#include <CLI/CLI.hpp>
#include <Eigen/Core>

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace tmsplan {
class OutputSet;
class Record;
}  // namespace tmsplan

namespace tmsplan::cli {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};

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
  /// One step's run, called inside run()'s body: registers `outputs` (role, file name) in `dir`
  /// and checks them (none may exist without --force), starts the run record (the tool's name and
  /// command line), runs `step`, then writes the record to the "record" output. Returns its path.
  std::string run_step(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& outputs,
                       const std::function<void(OutputSet&, Record&)>& step) const;
  /// A flag (e.g. --list-targets) that prints what `names` returns, one per line on stdout, and
  /// exits 0 without the required options, like --version (exit 1 with one error line when
  /// `names` throws). Declare it after the options `names` reads (e.g. --library): they are set
  /// in the order they were declared. Scripts check a name with it before a long run.
  void add_list(const std::string& flag, const std::string& help, std::function<std::vector<std::string>()> names);

 private:
  int print_list() const;
  std::string name_;
  CLI::App app_;
  Common common_;
  std::function<std::vector<std::string>()> requested_;  ///< the list flag given, if any
  int argc_ = 0;
  char** argv_ = nullptr;
};

/// An option whose value must lie in [lo, hi]; its default is shown in --help (an optional one,
/// whose absence means "not given", has none).
template <class T>
CLI::Option* add_bounded(CLI::App& app, const std::string& name, T& value, const std::string& help, double lo,
                         double hi) {
  CLI::Option* opt = app.add_option(name, value, help)->check(CLI::Range(lo, hi));
  if constexpr (!is_optional<T>::value) opt->capture_default_str();
  return opt;
}

/// An option whose default is shown in --help and whose value must be one of `choices`.
CLI::Option* add_choice(CLI::App& app, const std::string& name, std::string& value, const std::string& help,
                        const std::vector<std::string>& choices);

/// --template and --template-brain, the same in every tool: the MNI template head and its brain
/// on the template's grid (defaults shown: data.hpp's kMniTemplateHead / kMniTemplateBrain, set
/// by the caller's Params), both existing files; --template needs --template-brain.
void add_template_options(CLI::App& app, std::string& head, std::string& brain);

/// Parses "x,y,z" (commas or spaces) into three finite numbers; throws UsageError.
Eigen::Vector3d parse_triple(const std::string& text, const std::string& option);

}  // namespace tmsplan::cli
