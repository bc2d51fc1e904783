#include "support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace testing {

std::string shared_data() {
  const char* env = std::getenv("TMSPLAN_SHARED_DATA");
  std::string dir = env ? env : std::string(TMSPLAN_SOURCE_DIR) + "/../shared/data";
  return fs::is_directory(dir + "/philips-mprage") ? dir : std::string();
}

std::string samples_dir() {
  const std::string dir = TMSPLAN_SAMPLES_DIR;
  return fs::exists(dir + "/copies.json") ? dir : std::string();
}

std::string colin_head() { return "/usr/share/mricron/templates/ch2.nii.gz"; }

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(TMSPLAN_BIN_DIR).parent_path() / "test-tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string bin(const std::string& tool) { return std::string(TMSPLAN_BIN_DIR) + "/" + tool; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put(const std::string& path, const std::string& bytes) {
  fs::remove(path);
  std::ofstream(path, std::ios::binary) << bytes;
}

RunResult run(const std::string& command_line) {
  static int counter = 0;
  const fs::path base = fs::path(TMSPLAN_BIN_DIR).parent_path() / "test-tmp";
  fs::create_directories(base);
  const std::string stem = (base / ("run." + std::to_string(::getpid()) + "." + std::to_string(counter++))).string();
  const std::string cmd = command_line + " >" + stem + ".out 2>" + stem + ".err </dev/null";
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(stem + ".out");
  r.err = slurp(stem + ".err");
  fs::remove(stem + ".out");
  fs::remove(stem + ".err");
  return r;
}

std::string list_files(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

void skip(const std::string& why) {
  std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(77);
}

}  // namespace testing
