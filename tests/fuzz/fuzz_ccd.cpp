// The SimNIBS .ccd coil reader (read_ccd, lib/efield/coil.cpp): efield --coil FILE takes a user's
// coil model. It only reads from a path, so each input is written to a file in /dev/shm first. An
// accepted coil has as many moments as positions, all finite, within 1 m of the coil centre.
#include <cmath>

#include "fuzz_common.hpp"
#include "tmsplan/efield.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input("ccd");
  const std::string path = input.write(data, size, ".ccd");
  fuzz::accepts("read_ccd", [&] {
    const tmsplan::efield::Coil coil = tmsplan::efield::read_ccd(path);
    if (coil.size() == 0 || coil.moment.cols() != coil.position_m.cols()) fuzz::finding("read_ccd", "sizes differ");
    if (!coil.position_m.allFinite() || !coil.moment.allFinite()) fuzz::finding("read_ccd", "non-finite value");
    if (coil.position_m.colwise().norm().maxCoeff() > 1.0) fuzz::finding("read_ccd", "dipole beyond 1 m");
    if (!std::isfinite(coil.casing_radius_mm)) fuzz::finding("read_ccd", "non-finite casing radius");
  });
  return 0;
}
