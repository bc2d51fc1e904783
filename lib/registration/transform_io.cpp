// Transform files that ITK and ANTs tools read: ITK affine text files and NIfTI displacement
// fields (5D vectors, intent DISPVECT). Both hold LPS; the library works in RAS. Every LPS <-> RAS
// conversion goes through geometry.hpp.
#include <zlib.h>

#include <Eigen/Dense>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "../io/gz.hpp"
#include "../io/nifti_header.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/geometry.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/warp.hpp"

namespace tmsplan {
namespace {

constexpr std::int16_t kIntentDispVect = 1006;
constexpr std::int16_t kIntentVector = 1007;  // what ITK (and so ANTs) writes and reads back correctly

using detail::GzPtr;
using detail::Nifti1Header;

constexpr double kQuantum = 8192.0;  // displacements stored in steps of 1/8192 mm

// gzip of `bytes` as a series of independent gzip members of fixed size (a valid gzip file: zlib's
// gzread, ITK/ANTs and Python read concatenated members), compressed in parallel. The member
// boundaries do not depend on the thread count, so neither do the bytes.
std::string gzip_parallel(const std::string& bytes) {
  constexpr std::size_t kChunk = 8u << 20;
  const std::size_t chunks = std::max<std::size_t>(1, (bytes.size() + kChunk - 1) / kChunk);
  std::vector<std::string> parts(chunks);
  std::vector<int> status(chunks, Z_OK);
  parallel_for(std::int64_t(chunks), [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::size_t begin = std::size_t(c) * kChunk, len = std::min(kChunk, bytes.size() - begin);
      z_stream zs{};
      if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        status[std::size_t(c)] = Z_STREAM_ERROR;
        continue;
      }
      std::string& out = parts[std::size_t(c)];
      out.resize(deflateBound(&zs, uLong(len)));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + begin));
      zs.avail_in = uInt(len);
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = uInt(out.size());
      const int rc = deflate(&zs, Z_FINISH);
      out.resize(zs.total_out);
      deflateEnd(&zs);
      status[std::size_t(c)] = rc == Z_STREAM_END ? Z_OK : rc;
    }
  });
  std::string all;
  std::size_t total = 0;
  for (std::size_t c = 0; c < chunks; ++c) {
    if (status[c] != Z_OK) throw Error("gzip compression failed");
    total += parts[c].size();
  }
  all.reserve(total);
  for (auto& p : parts) all += p;
  return all;
}

std::string format_number(double v) { return fmt::format("{:.17g}", v); }

}  // namespace

void write_itk_affine(const std::string& path, const Eigen::Matrix4d& ras_to_ras, bool force) {
  if (!ras_to_ras.allFinite()) throw Error("cannot write a non-finite affine", path);
  const Eigen::Matrix4d lps = to_lps(RasMatrix(ras_to_ras)).m;
  std::string text = "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters:";
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) text += " " + format_number(lps(r, c));
  for (int r = 0; r < 3; ++r) text += " " + format_number(lps(r, 3));
  // Centre 0: the translation parameters are then the offset itself.
  text += "\nFixedParameters: 0 0 0\n";
  write_file_atomic(path, text, force);
}

Eigen::Matrix4d read_itk_affine(const std::string& path) {
  const std::string text = read_file(path, 1u << 20);
  std::istringstream in(text);
  std::string line, type;
  std::vector<double> params, fixed;
  bool header = false;
  auto numbers = [&](const std::string& rest) {
    std::vector<double> v;
    std::istringstream s(rest);
    std::string tok;
    while (s >> tok) {
      try {
        std::size_t used = 0;
        v.push_back(std::stod(tok, &used));
        if (used != tok.size()) throw std::invalid_argument(tok);
      } catch (const std::exception&) {
        throw Error("not a number in transform parameters: '" + tok + "'", path);
      }
    }
    return v;
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#Insight Transform File", 0) == 0) header = true;
    if (line.rfind("Transform:", 0) == 0) {
      if (!type.empty()) throw Error("transform file holds more than one transform (only one affine is read)", path);
      type = line.substr(10);
      type.erase(0, type.find_first_not_of(' '));
    } else if (line.rfind("Parameters:", 0) == 0) {
      params = numbers(line.substr(11));
    } else if (line.rfind("FixedParameters:", 0) == 0) {
      fixed = numbers(line.substr(16));
    }
  }
  if (!header) throw Error("not an ITK transform file (no '#Insight Transform File' line)", path);
  const bool known = type == "AffineTransform_double_3_3" || type == "AffineTransform_float_3_3" ||
                     type == "MatrixOffsetTransformBase_double_3_3" || type == "MatrixOffsetTransformBase_float_3_3";
  if (!known) throw Error("unsupported transform type '" + type + "' (expected AffineTransform_double_3_3)", path);
  if (params.size() != 12)
    throw Error(fmt::format("affine transform needs 12 parameters, found {}", params.size()), path);
  if (fixed.empty()) fixed = {0, 0, 0};
  if (fixed.size() != 3) throw Error("affine transform needs 3 fixed parameters (the centre)", path);
  Eigen::Matrix3d m;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m(r, c) = params[std::size_t(3 * r + c)];
  const Eigen::Vector3d t(params[9], params[10], params[11]), centre(fixed[0], fixed[1], fixed[2]);
  // ITK MatrixOffsetTransformBase: T(x) = M (x - c) + t + c.
  Eigen::Matrix4d lps = Eigen::Matrix4d::Identity();
  lps.topLeftCorner<3, 3>() = m;
  lps.topRightCorner<3, 1>() = t + centre - m * centre;
  if (!lps.allFinite() || std::abs(m.determinant()) < 1e-12) throw Error("singular or non-finite affine", path);
  return to_ras(LpsMatrix(lps)).m;
}

void write_displacement_field(const std::string& path, const DisplacementField& field, Frame frame, bool force) {
  const Grid& grid = field.grid;
  for (int a = 0; a < 3; ++a)
    if (field.d[std::size_t(a)].size() != grid.voxels()) throw Error("displacement field has the wrong size", path);
  for (int a = 0; a < 3; ++a)
    if (grid.dim[a] > 32767) throw Error("displacement field too large for NIfTI-1", path);
  Nifti1Header h{};
  h.sizeof_hdr = 348;
  h.regular = 'r';
  h.dim[0] = 5;
  for (int a = 0; a < 3; ++a) h.dim[a + 1] = static_cast<std::int16_t>(grid.dim[a]);
  h.dim[4] = 1;
  h.dim[5] = 3;
  h.dim[6] = h.dim[7] = 1;
  h.intent_code = kIntentVector;
  h.datatype = 16;
  h.bitpix = 32;
  for (int d = 4; d < 8; ++d) h.pixdim[d] = 1.0f;
  h.vox_offset = 352.0f;
  h.scl_slope = 1.0f;
  h.xyzt_units = 2;
  const std::string descrip = "tmsplan displacement (LPS mm)";
  std::memcpy(h.descrip, descrip.c_str(), descrip.size());
  detail::set_xforms(grid.vox2ras.m, static_cast<std::int16_t>(frame), h);
  std::memcpy(h.magic, "n+1\0", 4);

  // Components in LPS: x and y flip sign (geometry.hpp's to_lps on vectors). Values are rounded
  // to 2^-13 mm (below 0.00007 mm of error): the low mantissa bits then compress.
  const std::size_t n = grid.voxels();
  std::string bytes(sizeof h + 4 + 12 * n, '\0');
  std::memcpy(bytes.data(), &h, sizeof h);
  float* lps = reinterpret_cast<float*>(bytes.data() + sizeof h + 4);
  parallel_for(std::int64_t(n), [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t i = b0; i < b1; ++i) {
      const LpsVector v = to_lps(RasVector(field.at_voxel(std::size_t(i))));
      for (int c = 0; c < 3; ++c)
        lps[std::size_t(c) * n + std::size_t(i)] = static_cast<float>(std::round(v.v[c] * kQuantum) / kQuantum);
    }
  });
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  write_file_atomic(path, gz ? gzip_parallel(bytes) : bytes, force);
}

DisplacementField read_displacement_field(const std::string& path) {
  check_input_path(path);
  GzPtr file(gzopen(path.c_str(), "rb"));
  if (!file) throw Error("cannot open displacement field", path);
  gzbuffer(file.get(), 1 << 17);
  Nifti1Header h{};
  if (gzread(file.get(), &h, sizeof h) != static_cast<int>(sizeof h)) throw Error("too short for a NIfTI header", path);
  if (h.sizeof_hdr != 348 || std::memcmp(h.magic, "n+1", 3) != 0)
    throw Error("not a single-file little-endian NIfTI-1 image", path);
  if (h.dim[0] != 5 || h.dim[4] != 1 || h.dim[5] != 3)
    throw Error(fmt::format("not a 3D displacement field (dims {} {} {} {} {} {}; expected x y z 1 3)", h.dim[0],
                            h.dim[1], h.dim[2], h.dim[3], h.dim[4], h.dim[5]),
                path);
  if (h.intent_code != kIntentDispVect && h.intent_code != kIntentVector)
    throw Error(fmt::format("NIfTI intent {} is not a displacement field (1006)", h.intent_code), path);
  if (h.datatype != 16 && h.datatype != 64) throw Error("displacement field must be float32 or float64", path);
  DisplacementField field;
  for (int a = 0; a < 3; ++a) {
    if (h.dim[a + 1] < 1) throw Error("bad dimension in displacement field", path);
    field.grid.dim[a] = h.dim[a + 1];
  }
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  if (h.sform_code > 0) {
    for (int c = 0; c < 4; ++c) m(0, c) = h.srow_x[c], m(1, c) = h.srow_y[c], m(2, c) = h.srow_z[c];
  } else if (h.qform_code > 0) {
    m = detail::qform_matrix(h);
  } else {
    throw Error("displacement field has no world geometry (qform and sform codes 0)", path);
  }
  if (!m.allFinite() || std::abs(m.topLeftCorner<3, 3>().determinant()) < 1e-9)
    throw Error("displacement field has a singular voxel-to-world matrix", path);
  field.grid.vox2ras = RasMatrix(m);
  const std::size_t n = field.grid.voxels();
  if (n > kMaxVoxels) throw Error("displacement field too large", path);
  const std::size_t bytes = h.datatype == 16 ? 4 : 8;
  if (!std::isfinite(h.vox_offset) || h.vox_offset < 348.0f || h.vox_offset > float(1 << 20))
    throw Error(fmt::format("bad vox_offset {:g}", h.vox_offset), path);
  const std::size_t offset = static_cast<std::size_t>(h.vox_offset);
  const std::size_t need = offset + 3 * n * bytes;
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  if (!ec && need > detail::max_inflated_bytes(static_cast<std::size_t>(file_bytes), gz))
    throw Error(fmt::format("truncated: the header promises {} bytes of displacements, more than the file can hold",
                            3 * n * bytes),
                path);
  // Fast path: the whole file at once (libdeflate); else zlib streaming, which names the problem.
  std::vector<unsigned char> raw;
  std::size_t base = offset;
  if (!(gz && detail::inflate_gzip_file(path, need, raw))) {
    base = 0;
    const std::size_t skip = offset - sizeof h;
    std::vector<char> pad(skip);
    if (skip > 0 && gzread(file.get(), pad.data(), static_cast<unsigned>(skip)) != static_cast<int>(skip))
      throw Error("truncated header extension", path);
    raw.assign(3 * n * bytes, 0);
    for (std::size_t done = 0; done < raw.size();) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(raw.size() - done, 1u << 26));
      const int got = gzread(file.get(), raw.data() + done, chunk);
      if (got <= 0) throw Error("truncated or corrupt displacement field data", path);
      done += static_cast<std::size_t>(got);
    }
  }
  const double slope = (h.scl_slope != 0.0f && std::isfinite(h.scl_slope)) ? h.scl_slope : 1.0;
  const double inter = std::isfinite(h.scl_inter) ? h.scl_inter : 0.0;
  for (auto& c : field.d) c.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Eigen::Vector3d v;
    for (int c = 0; c < 3; ++c) {
      const std::size_t at = base + (std::size_t(c) * n + i) * bytes;
      double x;
      if (bytes == 4) {
        float f;
        std::memcpy(&f, raw.data() + at, 4);
        x = f;
      } else {
        std::memcpy(&x, raw.data() + at, 8);
      }
      v[c] = x * slope + inter;
    }
    if (!v.allFinite()) throw Error("non-finite displacement in field", path);
    const RasVector r = to_ras(LpsVector(v));
    for (int c = 0; c < 3; ++c) field.d[std::size_t(c)][i] = static_cast<float>(r.v[c]);
  }
  return field;
}

}  // namespace tmsplan
