#pragma once
// Internal to lib: whole-file gzip decompression with libdeflate (about twice as fast as zlib's
// streaming gzread on our volumes), used by the NIfTI and displacement-field readers.
#include <cstddef>
#include <string>
#include <vector>

namespace tmsplan::detail {

/// Decompresses the first `need` bytes of the gzip file at `path` (one or more concatenated
/// members, as gzip_parallel writes) into `out`. Returns false when the file is not gzip, is
/// damaged or short, or a member runs past `need`: the caller then falls back to zlib streaming,
/// which names the problem. Members are checked (CRC and length) as they are decompressed.
bool inflate_gzip_file(const std::string& path, std::size_t need, std::vector<unsigned char>& out);

/// Largest number of bytes a file of `file_bytes` can hold after decompression (deflate expands at
/// most 1032:1); used to refuse a header that promises more data than the file can contain.
std::size_t max_inflated_bytes(std::size_t file_bytes, bool gzip);

}  // namespace tmsplan::detail
