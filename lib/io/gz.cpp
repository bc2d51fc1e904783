#include "gz.hpp"

#include <libdeflate.h>

#include <fstream>
#include <limits>
#include <memory>

namespace tmsplan::detail {

bool inflate_gzip_file(const std::string& path, std::size_t need, std::vector<unsigned char>& out) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return false;
  const std::streamoff size = f.tellg();
  if (size < 18 || static_cast<std::size_t>(size) > std::numeric_limits<std::size_t>::max() / 2) return false;
  if (need > max_inflated_bytes(static_cast<std::size_t>(size), true)) return false;
  std::vector<unsigned char> in(static_cast<std::size_t>(size));
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(in.data()), size)) return false;
  if (in[0] != 0x1f || in[1] != 0x8b) return false;
  const std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> d(libdeflate_alloc_decompressor(),
                                                                                       libdeflate_free_decompressor);
  if (!d) return false;
  out.resize(need);
  std::size_t in_pos = 0, out_pos = 0;
  while (out_pos < need && in_pos < in.size()) {
    std::size_t used_in = 0, made = 0;
    const auto r = libdeflate_gzip_decompress_ex(d.get(), in.data() + in_pos, in.size() - in_pos, out.data() + out_pos,
                                                 need - out_pos, &used_in, &made);
    if (r != LIBDEFLATE_SUCCESS || used_in == 0) return false;
    in_pos += used_in;
    out_pos += made;
  }
  return out_pos == need;
}

std::size_t max_inflated_bytes(std::size_t file_bytes, bool gzip) {
  if (!gzip) return file_bytes;
  const std::size_t limit = std::numeric_limits<std::size_t>::max() / 1100;
  return file_bytes > limit ? std::numeric_limits<std::size_t>::max() : file_bytes * 1100;
}

}  // namespace tmsplan::detail
