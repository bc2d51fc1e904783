// Locating the data directory: see include/tmsplan/data.hpp for the order of the rules.
#include "tmsplan/data.hpp"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>

// Set by lib/CMakeLists.txt on this file only: the source data folder and the build tree whose
// executables may use it. Neither is used by an installed or copied executable.
#ifndef TMSPLAN_SOURCE_DATA_DIR
#define TMSPLAN_SOURCE_DATA_DIR ""
#endif
#ifndef TMSPLAN_BUILD_TREE
#define TMSPLAN_BUILD_TREE ""
#endif

namespace tmsplan {

namespace {

namespace fs = std::filesystem;

struct Located {
  std::string dir, origin;
};

bool holds_data(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "targets.json", ec);
}

// True when `inner` is `outer` or below it (both absolute, lexically normal).
bool inside(const fs::path& inner, const fs::path& outer) {
  auto o = outer.begin(), i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

Located locate() {
  if (const char* env = std::getenv("TMSPLAN_DATA"); env && *env) {
    std::error_code ec;
    fs::path p = fs::absolute(env, ec);
    return {(ec ? fs::path(env) : p).lexically_normal().string(), "TMSPLAN_DATA"};
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  fs::path installed;
  if (!ec) {
    installed = (exe.parent_path() / ".." / "share" / "tmsplan").lexically_normal();
    if (holds_data(installed)) return {installed.string(), "installed"};
    const fs::path tree = fs::path(TMSPLAN_BUILD_TREE).lexically_normal();
    const fs::path source = fs::path(TMSPLAN_SOURCE_DATA_DIR).lexically_normal();
    if (!tree.empty() && !source.empty() && inside(exe.lexically_normal(), tree) && holds_data(source))
      return {source.string(), "build tree"};
  }
  if (installed.empty()) installed = "/usr/share/tmsplan";
  std::string dir = installed.string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return {dir, "missing"};
}

const Located& located() {
  static const Located value = locate();
  return value;
}

}  // namespace

std::string data_dir() {
  std::string dir = located().dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string data_path(const std::string& rel) { return data_dir() + "/" + rel; }

std::string data_dir_origin() { return located().origin; }

}  // namespace tmsplan
