#include "tmsplan/cli.hpp"

#include <cmath>
#include <cstdio>
#include <functional>
#include <new>
#include <sstream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "tmsplan/data.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/provenance.hpp"
#include "tmsplan/version.hpp"

namespace tmsplan::cli {
namespace {

// The steps allocate and free whole volumes (tens to a few hundred MB) many times: every iteration
// of the registration, every filter pass. glibc serves such blocks from fresh mmap pages and hands
// them back on free, so each one is zeroed again by the kernel, page by page, on first touch. Kept
// in the heap instead, freed volumes are reused: on Philips the whole plan went from 48.1-48.8 s to
// 36.3-36.7 s wall, peak memory within 0.9 GiB (docs/pipeline.md). The trim threshold is only raised
// when the mmap one was accepted: raised alone it would stop glibc's own adaptation and send every
// large block to mmap (56 s for cortex-map instead of 17 s).
void keep_freed_volumes() {
#if defined(__GLIBC__)
  if (mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1) mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

Tool::Tool(std::string name, std::string description) : name_(std::move(name)), app_(std::move(description), name_) {
  // Second line: the data directory in use and the rule that chose it (include/tmsplan/data.hpp).
  app_.set_version_flag("--version", std::function<std::string()>([name = name_] {
                          return name + " (tmsplan) " + kVersion + "\ndata: " + data_dir() + " (" + data_dir_origin() +
                                 ")";
                        }));
  app_.add_flag("-q,--quiet", common_.quiet, "Print nothing on stderr but errors");
  app_.add_flag("-v,--verbose", common_.verbose, "Print detail and progress even when stderr is not a terminal");
  app_.add_option("--threads", common_.threads, "Worker threads (0 = all cores); outputs do not depend on it")
      ->check(CLI::Range(0, 256));
  app_.add_flag("-f,--force", common_.force, "Overwrite existing outputs");
  app_.get_formatter()->column_width(36);
}

int Tool::run(int argc, char** argv, const std::function<void()>& body) {
  log::set_tool(name_);
  argc_ = argc;
  argv_ = argv;
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app_.exit(e);
  } catch (const CLI::Success&) {
    return print_list();
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", name_.c_str(), e.what());
    return 2;
  }
  if (common_.quiet && common_.verbose) {
    std::fprintf(stderr, "%s: error: --quiet and --verbose exclude each other\n", name_.c_str());
    return 2;
  }
  log::set_level(common_.quiet ? log::Level::Quiet : common_.verbose ? log::Level::Verbose : log::Level::Normal);
  set_threads(common_.threads);
  keep_freed_volumes();
  install_interrupt_cleanup();
  begin_run_outputs();
  int code = 1;
  try {
    body();
    code = 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", name_.c_str(), e.what());
    code = 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", name_.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name_.c_str(), describe(e).c_str());
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown failure\n", name_.c_str());
  }
  // A run that failed removes the outputs it had already committed: no partial set is left.
  if (code == 0)
    keep_run_outputs();
  else
    discard_run_outputs();
  return code;
}

std::string Tool::run_step(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& outputs,
                           const std::function<void(OutputSet&, Record&)>& step) const {
  OutputSet out(dir, common_.force);
  for (const auto& [role, file_name] : outputs) out.add(role, file_name);
  out.check();
  Record record(name_, argc_, argv_);
  step(out, record);
  record.write(out.path("record"), common_.force);
  return out.path("record");
}

void Tool::add_list(const std::string& flag, const std::string& help, std::function<std::vector<std::string>()> names) {
  app_.add_flag_callback(
      flag,
      [this, names = std::move(names)] {
        requested_ = names;
        throw CLI::Success();
      },
      help);
}

int Tool::print_list() const {
  if (!requested_) return 0;
  try {
    std::string text;
    for (const auto& n : requested_()) text += n + "\n";
    std::fputs(text.c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name_.c_str(), describe(e).c_str());
    return 1;
  }
}

CLI::Option* add_choice(CLI::App& app, const std::string& name, std::string& value, const std::string& help,
                        const std::vector<std::string>& choices) {
  return app.add_option(name, value, help)->capture_default_str()->check(CLI::IsMember(choices));
}

void add_template_options(CLI::App& app, std::string& head, std::string& brain) {
  auto* head_opt = app.add_option("--template", head, "Template head in MNI space (needs --template-brain)")
                       ->capture_default_str()
                       ->check(CLI::ExistingFile);
  auto* brain_opt = app.add_option("--template-brain", brain, "Template brain on the template grid (> 0.5 inside)")
                        ->capture_default_str()
                        ->check(CLI::ExistingFile);
  head_opt->needs(brain_opt);
}

Eigen::Vector3d parse_triple(const std::string& text, const std::string& option) {
  std::string s = text;
  for (char& c : s)
    if (c == ',') c = ' ';
  std::istringstream in(s);
  Eigen::Vector3d v;
  for (int i = 0; i < 3; ++i) {
    if (!(in >> v[i]) || !std::isfinite(v[i]))
      throw UsageError(option + " needs three numbers x,y,z, got '" + text + "'");
  }
  std::string rest;
  if (in >> rest) throw UsageError(option + " needs three numbers x,y,z, got '" + text + "'");
  return v;
}

}  // namespace tmsplan::cli
