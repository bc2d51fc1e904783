#pragma once
// Test helpers: where data lives, temporary folders, running a tool and capturing its output.
#include <string>

namespace testing {

/// Ends this test as skipped: prints why on stderr and exits with code 77, which ctest reports as
/// "Skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt), never as passed.
[[noreturn]] void skip(const std::string& why);

/// ../shared/data, or "" when absent (tests then skip with a message).
std::string shared_data();
/// The scanner-like Colin27 copies made by make-samples, or "" when absent.
std::string samples_dir();
/// Colin27 head from mricron-data.
std::string colin_head();
/// A fresh empty folder under the build tree.
std::string temp_dir(const std::string& name);
std::string bin(const std::string& tool);
/// A file's bytes ("" when it cannot be read).
std::string slurp(const std::string& path);
/// Writes a fresh file (removing any link first, so a hard-linked fixture file is never changed).
void put(const std::string& path, const std::string& bytes);

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
/// Runs a shell command line; captures stdout and stderr.
RunResult run(const std::string& command_line);
/// Lists the files in a folder (names only, sorted).
std::string list_files(const std::string& dir);

}  // namespace testing
