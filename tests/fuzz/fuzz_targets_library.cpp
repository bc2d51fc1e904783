// The target library reader (load_library, lib/targets/library.cpp). It only reads from a path,
// so each input is written to a file in /dev/shm first.
#include "fuzz_common.hpp"
#include "tmsplan/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input("targets");
  const std::string path = input.write(data, size);
  fuzz::accepts("load_library", [&] {
    const tmsplan::targets::Library lib = tmsplan::targets::load_library(path);
    for (const auto& e : lib.entries) (void)lib.find(e.name);
  });
  return 0;
}
