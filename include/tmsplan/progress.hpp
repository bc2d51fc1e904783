#pragma once
/// RAII progress bar on stderr: shown when stderr is a terminal (unless --quiet) or with
/// --verbose; otherwise silent. `Progress p{"segmenting", n}; ++p;`
#include <cstdint>
#include <string>

namespace tmsplan {

class Progress {
 public:
  Progress(std::string label, std::int64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  Progress& operator++();
  void set(std::int64_t done);

 private:
  void draw(bool final);
  std::string label_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  int last_percent_ = -1;
  bool enabled_;
  bool tty_;
};

}  // namespace tmsplan
