// The GIfTI surface reader (read_gifti, lib/surface/gifti.cpp), which efield uses for the pial
// surface a user may bring or edit. It only reads from a path, so each input is written to a file
// in /dev/shm first. An accepted mesh must have every triangle's vertices in range.
#include "fuzz_common.hpp"
#include "tmsplan/surface.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input("gifti");
  const std::string path = input.write(data, size, ".surf.gii");
  fuzz::accepts("read_gifti", [&] {
    const tmsplan::Mesh mesh = tmsplan::read_gifti(path);
    for (const auto& t : mesh.triangles)
      for (int v : t)
        if (v < 0 || std::size_t(v) >= mesh.vertices.size()) fuzz::finding("read_gifti", "triangle index out of range");
  });
  return 0;
}
