#pragma once
// Shared by the libFuzzer targets: tmsplan::Error is the expected way to reject an input; any
// other exception escaping a reader is a finding (printed with its type, then abort so libFuzzer
// records the input as a crash).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <unistd.h>

#include "tmsplan/error.hpp"
#include "tmsplan/log.hpp"

namespace fuzz {

[[noreturn]] inline void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "FUZZ FINDING: %s: %s\n", what, detail.c_str());
  std::abort();
}

/// Runs one reader; returns true when it accepted the input, false when it threw tmsplan::Error.
template <class F> bool accepts(const char* reader, F&& f) {
  try {
    f();
    return true;
  } catch (const tmsplan::Error&) {
    return false;
  } catch (const std::exception& e) {
    finding(reader, std::string("escaped ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    finding(reader, "escaped a non-std exception");
  }
}

/// A file holding the input, for readers that only take a path: one per process and extension, in
/// /dev/shm (memory) when it exists, rewritten for every input.
class InputFile {
 public:
  explicit InputFile(const char* stem) {
    const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    base_ = std::string(dir) + "/tmsplan-fuzz-" + stem + "-" + std::to_string(::getpid());
  }
  ~InputFile() {
    for (const std::string& p : written_) std::remove(p.c_str());
  }
  /// The file's path with `extension` appended (readers that go by the name, e.g. ".gz").
  std::string path(const std::string& extension = {}) {
    const std::string p = base_ + extension;
    if (std::find(written_.begin(), written_.end(), p) == written_.end()) written_.push_back(p);
    return p;
  }
  std::string write(const std::uint8_t* data, std::size_t size, const std::string& extension = {}) {
    const std::string p = path(extension);
    std::FILE* f = std::fopen(p.c_str(), "wb");
    if (!f) finding("harness", "cannot write " + p);
    if (size && std::fwrite(data, 1, size, f) != size) finding("harness", "cannot write " + p);
    std::fclose(f);
    return p;
  }

 private:
  std::string base_;
  std::vector<std::string> written_;
};

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace fuzz
