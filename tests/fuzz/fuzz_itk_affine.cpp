// ITK affine transform files (read_itk_affine, lib/registration/transform_io.cpp). The reader
// takes a path, so each input is written to a file in /dev/shm first.
#include "fuzz_common.hpp"
#include "tmsplan/warp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input("itk-affine");
  const std::string path = input.write(data, size);
  fuzz::accepts("read_itk_affine", [&] { (void)tmsplan::read_itk_affine(path); });
  return 0;
}
