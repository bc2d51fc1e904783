// NIfTI-1 reading and writing (single file .nii / .nii.gz, either byte order on reading).
// Every header field that matters is checked before the voxel buffer is allocated.
#include <libdeflate.h>
#include <zlib.h>

#include <Eigen/SVD>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <tuple>

#include "gz.hpp"
#include "nifti_header.hpp"
#include "nifti_internal.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/nifti.hpp"
#include "tmsplan/parallel.hpp"

namespace tmsplan::detail {
namespace {

template <class T> void swap_bytes(T& v) {
  auto* p = reinterpret_cast<unsigned char*>(&v);
  std::reverse(p, p + sizeof(T));
}

void swap_header(Nifti1Header& h) {
  swap_bytes(h.sizeof_hdr);
  swap_bytes(h.extents);
  swap_bytes(h.session_error);
  for (auto& d : h.dim) swap_bytes(d);
  swap_bytes(h.intent_p1);
  swap_bytes(h.intent_p2);
  swap_bytes(h.intent_p3);
  swap_bytes(h.intent_code);
  swap_bytes(h.datatype);
  swap_bytes(h.bitpix);
  swap_bytes(h.slice_start);
  for (auto& p : h.pixdim) swap_bytes(p);
  swap_bytes(h.vox_offset);
  swap_bytes(h.scl_slope);
  swap_bytes(h.scl_inter);
  swap_bytes(h.slice_end);
  swap_bytes(h.cal_max);
  swap_bytes(h.cal_min);
  swap_bytes(h.slice_duration);
  swap_bytes(h.toffset);
  swap_bytes(h.glmax);
  swap_bytes(h.glmin);
  swap_bytes(h.qform_code);
  swap_bytes(h.sform_code);
  swap_bytes(h.quatern_b);
  swap_bytes(h.quatern_c);
  swap_bytes(h.quatern_d);
  swap_bytes(h.qoffset_x);
  swap_bytes(h.qoffset_y);
  swap_bytes(h.qoffset_z);
  for (auto& v : h.srow_x) swap_bytes(v);
  for (auto& v : h.srow_y) swap_bytes(v);
  for (auto& v : h.srow_z) swap_bytes(v);
}

struct TypeInfo {
  int code;
  int bytes;
  const char* name;
};

const TypeInfo* type_info(int code) {
  static const TypeInfo types[] = {{2, 1, "uint8"},    {4, 2, "int16"},    {8, 4, "int32"},    {16, 4, "float32"},
                                   {64, 8, "float64"}, {256, 1, "int8"},   {512, 2, "uint16"}, {768, 4, "uint32"},
                                   {1024, 8, "int64"}, {1280, 8, "uint64"}};
  for (const auto& t : types)
    if (t.code == code) return &t;
  return nullptr;
}

bool all_finite(const Eigen::Matrix4d& m) { return m.allFinite(); }

Eigen::Matrix4d sform_matrix(const Nifti1Header& h) {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  for (int c = 0; c < 4; ++c) {
    m(0, c) = h.srow_x[c];
    m(1, c) = h.srow_y[c];
    m(2, c) = h.srow_z[c];
  }
  return m;
}

template <class T>
void convert(const unsigned char* raw, bool swap, std::vector<float>& out, double slope, double inter) {
  const std::size_t n = out.size();
  for (std::size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, raw + i * sizeof(T), sizeof(T));
    if (swap) swap_bytes(v);
    out[i] = static_cast<float>(static_cast<double>(v) * slope + inter);
  }
}

}  // namespace

Eigen::Matrix4d qform_matrix(const Nifti1Header& h) {
  const double b = h.quatern_b, c = h.quatern_c, d = h.quatern_d;
  double a = 1.0 - (b * b + c * c + d * d);
  double bb = b, cc = c, dd = d;
  if (a < 1e-7) {
    // Quaternion on the edge of validity: a 180-degree rotation, renormalised as nifti1_io does.
    const double n = 1.0 / std::sqrt(b * b + c * c + d * d);
    bb *= n;
    cc *= n;
    dd *= n;
    a = 0.0;
  } else {
    a = std::sqrt(a);
  }
  Eigen::Matrix3d r;
  r << a * a + bb * bb - cc * cc - dd * dd, 2 * (bb * cc - a * dd), 2 * (bb * dd + a * cc),  //
      2 * (bb * cc + a * dd), a * a + cc * cc - bb * bb - dd * dd, 2 * (cc * dd - a * bb),   //
      2 * (bb * dd - a * cc), 2 * (cc * dd + a * bb), a * a + dd * dd - cc * cc - bb * bb;
  const double qfac = h.pixdim[0] < 0 ? -1.0 : 1.0;
  Eigen::Vector3d scale(h.pixdim[1], h.pixdim[2], h.pixdim[3] * qfac);
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  m.topLeftCorner<3, 3>() = r * scale.asDiagonal();
  m(0, 3) = h.qoffset_x;
  m(1, 3) = h.qoffset_y;
  m(2, 3) = h.qoffset_z;
  return m;
}

QformRotation qform_rotation(const Eigen::Matrix3d& a) {
  // Columns normalised; a negative determinant goes into qfac (pixdim[0]) as NIfTI prescribes.
  QformRotation out;
  out.spacing = Eigen::Vector3d(a.col(0).norm(), a.col(1).norm(), a.col(2).norm());
  Eigen::Matrix3d r = a * out.spacing.cwiseInverse().asDiagonal();
  if (r.determinant() < 0) {
    out.qfac = -1.0;
    r.col(2) *= -1.0;
  }
  // Nearest rotation (removes any shear so the qform is a proper rotation).
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);
  out.q = Eigen::Quaterniond(Eigen::Matrix3d(svd.matrixU() * svd.matrixV().transpose()));
  out.q.normalize();
  if (out.q.w() < 0) out.q.coeffs() *= -1.0;
  return out;
}

void quaternion_from(const Eigen::Matrix3d& a, Nifti1Header& h) {
  const QformRotation r = qform_rotation(a);
  h.quatern_b = static_cast<float>(r.q.x());
  h.quatern_c = static_cast<float>(r.q.y());
  h.quatern_d = static_cast<float>(r.q.z());
  h.pixdim[0] = static_cast<float>(r.qfac);
  for (int d = 0; d < 3; ++d) h.pixdim[d + 1] = static_cast<float>(r.spacing[d]);
}

void set_xforms(const Eigen::Matrix4d& m, std::int16_t code, Nifti1Header& h) {
  quaternion_from(m.topLeftCorner<3, 3>(), h);
  h.qoffset_x = static_cast<float>(m(0, 3));
  h.qoffset_y = static_cast<float>(m(1, 3));
  h.qoffset_z = static_cast<float>(m(2, 3));
  for (int c = 0; c < 4; ++c) {
    h.srow_x[c] = static_cast<float>(m(0, c));
    h.srow_y[c] = static_cast<float>(m(1, c));
    h.srow_z[c] = static_cast<float>(m(2, c));
  }
  h.qform_code = code;
  h.sform_code = code;
}

namespace {

// Reads the 348-byte header (either byte order: `swap` says whether the file's is the other one)
// and checks that the file is a single-file NIfTI-1.
Nifti1Header read_header(gzFile file, const std::string& path, bool& swap) {
  Nifti1Header h{};
  const int got = gzread(file, &h, sizeof h);
  if (got < 0) throw Error("corrupt compressed data in the header", path);
  if (got != static_cast<int>(sizeof h)) throw Error("not a NIfTI-1 image: file shorter than a 348-byte header", path);
  swap = false;
  if (h.sizeof_hdr != 348) {
    std::int32_t s = h.sizeof_hdr;
    swap_bytes(s);
    if (s == 348) {
      swap = true;
      swap_header(h);
    } else if (h.sizeof_hdr == 540 || s == 540) {
      throw Error("NIfTI-2 images are not supported yet (convert to NIfTI-1)", path);
    } else {
      throw Error("not a NIfTI-1 image (header size " + std::to_string(h.sizeof_hdr) + ", expected 348)", path);
    }
  }
  if (std::memcmp(h.magic, "ni1\0", 4) == 0)
    throw Error("NIfTI header/image pairs (.hdr/.img) are not supported; use a single .nii file", path);
  if (std::memcmp(h.magic, "n+1\0", 4) != 0) throw Error("not a NIfTI-1 image (magic is not 'n+1')", path);
  return h;
}

// The datatype's description, checked against bitpix.
const TypeInfo& checked_type(const Nifti1Header& h, const std::string& path) {
  const TypeInfo* type = type_info(h.datatype);
  if (!type)
    throw Error("unsupported NIfTI datatype " + std::to_string(h.datatype) + " (complex, RGB or unknown)", path);
  if (h.bitpix != 0 && h.bitpix != type->bytes * 8)
    throw Error("bitpix " + std::to_string(h.bitpix) + " does not match datatype " + type->name, path);
  return *type;
}

// The voxel -> RAS matrix (sform, else qform, else pixdim with a warning), checked.
Eigen::Matrix4d header_vox2ras(const Nifti1Header& h, const std::string& path, std::vector<std::string>& warnings) {
  for (int d = 1; d <= 3; ++d) {
    if (!std::isfinite(h.pixdim[d]) || h.pixdim[d] <= 0.0f)
      throw Error("invalid voxel spacing pixdim[" + std::to_string(d) + "] = " + std::to_string(h.pixdim[d]) +
                      " (must be positive and finite)",
                  path);
    if (h.pixdim[d] > 100.0f)
      throw Error("absurd voxel spacing pixdim[" + std::to_string(d) + "] = " + std::to_string(h.pixdim[d]) + " mm",
                  path);
  }
  Eigen::Matrix4d vox2ras;
  const bool has_s = h.sform_code > 0;
  const bool has_q = h.qform_code > 0;
  if (has_s) {
    vox2ras = sform_matrix(h);
    if (has_q) {
      const Eigen::Matrix4d q = qform_matrix(h);
      const double diff = (q - vox2ras).topRows<3>().cwiseAbs().maxCoeff();
      if (all_finite(q) && diff > 1e-3)
        warnings.push_back(fmt::format("sform and qform disagree (largest difference {:.4g}); using the sform", diff));
    }
  } else if (has_q) {
    // A unit quaternion has b^2 + c^2 + d^2 <= 1; a larger sum is a corrupt header, and the
    // renormalisation below would silently turn it into some 180-degree rotation.
    const double bcd =
        double(h.quatern_b) * h.quatern_b + double(h.quatern_c) * h.quatern_c + double(h.quatern_d) * h.quatern_d;
    if (std::isfinite(bcd) && bcd > 1.0 + 1e-3)
      throw Error(fmt::format("qform quaternion is not a rotation (b^2 + c^2 + d^2 = {:.4g}, at most 1)", bcd), path);
    vox2ras = qform_matrix(h);
  } else {
    vox2ras = Eigen::Matrix4d::Identity();
    for (int d = 0; d < 3; ++d) vox2ras(d, d) = h.pixdim[d + 1];
    warnings.push_back("no sform or qform: orientation unknown, assuming voxel axes along R, A, S");
  }
  if (!all_finite(vox2ras)) throw Error("orientation matrix has non-finite values", path);
  const double det = vox2ras.topLeftCorner<3, 3>().determinant();
  if (!std::isfinite(det) || std::abs(det) < 1e-6)
    throw Error("orientation matrix is not invertible (determinant " + fmt::format("{:.3g}", det) + ")", path);
  Grid probe;
  probe.vox2ras = RasMatrix(vox2ras);
  const Eigen::Vector3d sp = probe.spacing_mm();
  if (sp.minCoeff() < 1e-3 || sp.maxCoeff() > 100.0)
    throw Error(
        fmt::format("absurd voxel size from the orientation matrix ({:.4g} x {:.4g} x {:.4g} mm)", sp[0], sp[1], sp[2]),
        path);
  return vox2ras;
}

// scl_slope / scl_inter as NIfTI applies them (slope 0 or not finite: no scaling).
std::pair<double, double> scaling(const Nifti1Header& h, const std::string& path) {
  double slope = h.scl_slope, inter = h.scl_inter;
  if (!std::isfinite(slope) || slope == 0.0) {
    slope = 1.0;
    inter = 0.0;
  }
  if (!std::isfinite(inter)) throw Error("scl_inter is not finite", path);
  return {slope, inter};
}

// Reads `bytes` bytes of voxel data after vox_offset (checked first) into `raw`; returns where
// they start in it. The header has been read from `file` already.
const unsigned char* read_voxel_bytes(gzFile file, const std::string& path, const Nifti1Header& h, std::uint64_t bytes,
                                      std::vector<unsigned char>& raw) {
  if (!std::isfinite(h.vox_offset) || h.vox_offset < 352.0f)
    throw Error("invalid vox_offset " + std::to_string(h.vox_offset) + " (at least 352 for a .nii file)", path);
  if (h.vox_offset > 1e12f)  // beyond any file; also keeps the conversion to an integer offset defined
    throw Error(fmt::format("invalid vox_offset {:g} (voxel data would start beyond 1 TB)", h.vox_offset), path);
  const std::size_t offset = static_cast<std::size_t>(h.vox_offset);
  const bool gz = gzdirect(file) == 0;
  {
    std::error_code ec;
    const auto file_bytes = std::filesystem::file_size(path, ec);
    if (!ec && offset + bytes > max_inflated_bytes(static_cast<std::size_t>(file_bytes), gz))
      throw Error(
          fmt::format(
              "truncated file: the header promises {} bytes of voxel data, more than this {}-byte file can hold", bytes,
              file_bytes),
          path);
  }
  // Fast path: the whole gzip file at once (libdeflate, every member CRC-checked). Anything odd
  // (trailing data, damage) falls back to zlib streaming below, which names the problem.
  if (gz && inflate_gzip_file(path, offset + static_cast<std::size_t>(bytes), raw)) return raw.data() + offset;
  // Skip the extensions up to vox_offset.
  const long skip = static_cast<long>(h.vox_offset) - 348;
  std::vector<unsigned char> pad(static_cast<std::size_t>(std::min<long>(skip, 1 << 20)));
  long left = skip;
  while (left > 0) {
    const int chunk = static_cast<int>(std::min<long>(left, static_cast<long>(pad.size())));
    const int n = gzread(file, pad.data(), static_cast<unsigned>(chunk));
    if (n <= 0)
      throw Error("truncated file: ends before the voxel data (vox_offset " + std::to_string(skip + 348) + ")", path);
    left -= n;
  }
  try {
    raw.assign(static_cast<std::size_t>(bytes), 0);
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for " + std::to_string(bytes) + " bytes of voxels", path);
  }
  auto zlib_error = [&] {
    int errnum = 0;
    const char* msg = gzerror(file, &errnum);
    return Error(std::string("corrupt compressed data: ") + (msg ? msg : "zlib error"), path);
  };
  std::uint64_t done = 0;
  while (done < bytes) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::uint64_t>(bytes - done, 1u << 30));
    const int n = gzread(file, raw.data() + done, chunk);
    if (n < 0) throw zlib_error();
    if (n == 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  if (done < bytes)
    throw Error("truncated file: " + std::to_string(done) + " of " + std::to_string(bytes) + " bytes of voxel data",
                path);
  // Reading one more byte makes zlib check the gzip trailer (CRC and length).
  unsigned char extra;
  if (gzread(file, &extra, 1) < 0) throw zlib_error();
  return raw.data();
}

// Voxel values of any supported datatype as float (byte-swapped when `swap`), scaled.
void convert_any(int datatype, const unsigned char* bytes, bool swap, std::vector<float>& out, double slope,
                 double inter, const std::string& path) {
  switch (datatype) {
  case 2:
    return convert<std::uint8_t>(bytes, swap, out, slope, inter);
  case 4:
    return convert<std::int16_t>(bytes, swap, out, slope, inter);
  case 8:
    return convert<std::int32_t>(bytes, swap, out, slope, inter);
  case 16:
    return convert<float>(bytes, swap, out, slope, inter);
  case 64:
    return convert<double>(bytes, swap, out, slope, inter);
  case 256:
    return convert<std::int8_t>(bytes, swap, out, slope, inter);
  case 512:
    return convert<std::uint16_t>(bytes, swap, out, slope, inter);
  case 768:
    return convert<std::uint32_t>(bytes, swap, out, slope, inter);
  case 1024:
    return convert<std::int64_t>(bytes, swap, out, slope, inter);
  case 1280:
    return convert<std::uint64_t>(bytes, swap, out, slope, inter);
  default:
    throw Error("unsupported datatype", path);
  }
}

GzPtr open_for_reading(const std::string& path) {
  check_input_path(path);
  GzPtr file(gzopen(path.c_str(), "rb"));
  if (!file) throw Error("cannot open", path);
  gzbuffer(file.get(), 1 << 17);
  return file;
}

}  // namespace

namespace {

// An opened single-file NIfTI-1 3D image: its checked header and what it says about the voxels.
struct Opened {
  GzPtr file;
  Nifti1Header h{};
  bool swap = false;
  std::uint64_t voxels = 0;
  const TypeInfo* type = nullptr;
  Eigen::Matrix4d vox2ras;
  std::vector<std::string> warnings;
  double slope = 1.0, inter = 0.0;
};

Opened open_image(const std::string& path) {
  Opened o;
  o.file = open_for_reading(path);
  o.h = read_header(o.file.get(), path, o.swap);
  const Nifti1Header& h = o.h;
  const int ndim = h.dim[0];
  if (ndim < 1 || ndim > 7) throw Error("invalid dim[0] = " + std::to_string(ndim), path);
  std::uint64_t voxels = 1;
  for (int d = 1; d <= ndim; ++d) {
    if (h.dim[d] < 1)
      throw Error("invalid size " + std::to_string(h.dim[d]) + " along dimension " + std::to_string(d), path);
    if (d <= 3) voxels *= static_cast<std::uint64_t>(h.dim[d]);
  }
  if (ndim < 3 || h.dim[3] == 1)
    throw Error("2D image (" + std::to_string(h.dim[1]) + "x" + std::to_string(ndim >= 2 ? h.dim[2] : 1) +
                    " voxels): a 3D head scan is needed",
                path);
  for (int d = 4; d <= ndim; ++d) {
    if (h.dim[d] > 1)
      throw Error("4D image with " + std::to_string(h.dim[d]) +
                      " volumes: give a single 3D volume (a multi-echo MPRAGE: the echoes' root mean square)",
                  path);
  }
  if (voxels > kMaxVoxels)
    throw Error("header asks for an absurd size (" + std::to_string(h.dim[1]) + "x" + std::to_string(h.dim[2]) + "x" +
                    std::to_string(h.dim[3]) + " voxels, more than 1024^3)",
                path);
  o.voxels = voxels;
  o.type = &checked_type(h, path);
  if (!std::isfinite(h.vox_offset) || h.vox_offset < 352.0f)
    throw Error("invalid vox_offset " + std::to_string(h.vox_offset) + " (at least 352 for a .nii file)", path);
  o.vox2ras = header_vox2ras(h, path, o.warnings);
  std::tie(o.slope, o.inter) = scaling(h, path);
  return o;
}

Grid grid_of(const Opened& o) {
  Grid g;
  g.dim = {o.h.dim[1], o.h.dim[2], o.h.dim[3]};
  g.vox2ras = RasMatrix(o.vox2ras);
  return g;
}

}  // namespace

Image read_nifti(const std::string& path, const ReadOptions& /*options*/, ImageInfo* info) {
  Opened o = open_image(path);
  std::vector<unsigned char> raw;
  const unsigned char* voxel_bytes =
      read_voxel_bytes(o.file.get(), path, o.h, o.voxels * static_cast<std::uint64_t>(o.type->bytes), raw);
  Image image;
  image.grid = grid_of(o);
  image.data.resize(static_cast<std::size_t>(o.voxels));
  convert_any(o.h.datatype, voxel_bytes, o.swap, image.data, o.slope, o.inter, path);
  if (info) {
    info->path = path;
    info->format = gzdirect(o.file.get()) ? "nifti" : "nifti-gz";
    info->source_datatype = o.type->name;
    info->warnings = o.warnings;
  }
  for (const auto& w : o.warnings) log::warn(w + " (" + path + ")");
  return image;
}

bool read_nifti_uint8_mask(const std::string& path, Mask& mask) {
  Opened o = open_image(path);
  if (o.h.datatype != 2 || o.slope != 1.0 || o.inter != 0.0) return false;
  std::vector<unsigned char> raw;
  const unsigned char* bytes = read_voxel_bytes(o.file.get(), path, o.h, o.voxels, raw);
  mask = Mask(grid_of(o), 0);
  for (std::size_t i = 0; i < mask.data.size(); ++i) mask.data[i] = bytes[i] != 0 ? 1 : 0;
  for (const auto& w : o.warnings) log::warn(w + " (" + path + ")");
  return true;
}

}  // namespace tmsplan::detail

namespace tmsplan {

VectorVolume read_nifti_vectors(const std::string& path) {
  using namespace detail;
  GzPtr file = open_for_reading(path);
  bool swap = false;
  const Nifti1Header h = read_header(file.get(), path, swap);
  if (h.dim[0] != 5 || h.dim[4] != 1 || h.dim[5] < 1)
    throw Error(fmt::format("not a vector image (dims {} {} {} {} {} {}; expected x y z 1 components)", h.dim[0],
                            h.dim[1], h.dim[2], h.dim[3], h.dim[4], h.dim[5]),
                path);
  VectorVolume v;
  for (int a = 0; a < 3; ++a) {
    if (h.dim[a + 1] < 1)
      throw Error("invalid size " + std::to_string(h.dim[a + 1]) + " along dimension " + std::to_string(a + 1), path);
    v.grid.dim[a] = h.dim[a + 1];
  }
  v.components = h.dim[5];
  if (v.grid.voxels() > kMaxVoxels || v.components > 64) throw Error("vector image too large", path);
  const TypeInfo& type = checked_type(h, path);
  v.datatype = h.datatype;
  v.intent_code = h.intent_code;
  if (h.sform_code <= 0 && h.qform_code <= 0) throw Error("no world geometry (qform and sform codes 0)", path);
  std::vector<std::string> warnings;
  v.grid.vox2ras = RasMatrix(header_vox2ras(h, path, warnings));
  const auto [slope, inter] = scaling(h, path);
  const std::uint64_t values = std::uint64_t(v.grid.voxels()) * std::uint64_t(v.components);
  std::vector<unsigned char> raw;
  const unsigned char* bytes = read_voxel_bytes(file.get(), path, h, values * std::uint64_t(type.bytes), raw);
  v.data.resize(static_cast<std::size_t>(values));
  convert_any(h.datatype, bytes, swap, v.data, slope, inter, path);
  for (const auto& w : warnings) log::warn(w + " (" + path + ")");
  return v;
}

}  // namespace tmsplan

namespace tmsplan::detail {

// Header (348 bytes), a zero extender and the voxel bytes, written atomically: as they are, or
// (".gz") as a series of independent gzip members, one per 8 MiB of that stream, compressed in
// parallel with libdeflate (a valid gzip file: zlib's gzread, ITK/ANTs, nibabel and our reader
// read concatenated members; about twice zlib's speed at level 1, and smaller). The member
// boundaries do not depend on the thread count, so neither do the bytes. The voxels are read in
// place (no copy of the image); only the compressed members are held.
void write_nifti_stream(const std::string& path, const Nifti1Header& h, const unsigned char* voxels,
                        std::uint64_t voxel_bytes, bool force, int level) {
  constexpr std::size_t kHead = sizeof(Nifti1Header) + 4;
  static_assert(kHead == 352, "NIfTI-1 single-file header plus extender");
  unsigned char head[kHead] = {};
  std::memcpy(head, &h, sizeof h);
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  const std::uint64_t total = kHead + voxel_bytes;
  constexpr std::size_t kChunk = 8u << 20;
  const std::size_t chunks = gz ? std::size_t((total + kChunk - 1) / kChunk) : 0;
  std::vector<std::string> parts(chunks);
  std::vector<char> failed(chunks, 0);
  parallel_for(std::int64_t(chunks), [&](std::int64_t c0, std::int64_t c1) {
    const std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> z(
        libdeflate_alloc_compressor(std::clamp(level, 1, 9)), libdeflate_free_compressor);
    std::vector<unsigned char> first;
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::uint64_t begin = std::uint64_t(c) * kChunk;
      const std::size_t len = std::size_t(std::min<std::uint64_t>(kChunk, total - begin));
      const unsigned char* src = voxels + (begin - (begin ? kHead : 0));
      if (begin == 0) {  // the member holding the header: header and voxels side by side
        first.assign(head, head + kHead);
        first.insert(first.end(), voxels, voxels + (len - kHead));
        src = first.data();
      }
      std::string& out = parts[std::size_t(c)];
      if (!z) {
        failed[std::size_t(c)] = 1;
        continue;
      }
      out.resize(libdeflate_gzip_compress_bound(z.get(), len));
      const std::size_t got = libdeflate_gzip_compress(z.get(), src, len, out.data(), out.size());
      out.resize(got);
      failed[std::size_t(c)] = got == 0 ? 1 : 0;
    }
  });
  for (char f : failed)
    if (f) throw Error("gzip compression failed", path);
  AtomicFile file(path, force);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (gz) {
      for (auto& part : parts) {
        out.write(part.data(), std::streamsize(part.size()));
        std::string().swap(part);
      }
    } else {
      out.write(reinterpret_cast<const char*>(head), kHead);
      for (std::uint64_t done = 0; out && done < voxel_bytes;) {
        const std::uint64_t n = std::min<std::uint64_t>(voxel_bytes - done, 1u << 26);
        out.write(reinterpret_cast<const char*>(voxels + done), std::streamsize(n));
        done += n;
      }
    }
    out.flush();
    if (!out) throw Error("cannot write (disk full?)", path);
  }
  file.commit();
}

void write_nifti(const std::string& path, const Grid& grid, const void* voxels, DiskType type,
                 const WriteOptions& options) {
  Nifti1Header h{};
  h.sizeof_hdr = 348;
  h.regular = 'r';
  h.dim[0] = 3;
  for (int d = 0; d < 3; ++d) h.dim[d + 1] = static_cast<std::int16_t>(grid.dim[d]);
  for (int d = 4; d < 8; ++d) h.dim[d] = 1;
  int bytes_per = 4;
  switch (type) {
  case DiskType::UInt8:
    h.datatype = 2;
    bytes_per = 1;
    break;
  case DiskType::Int16:
    h.datatype = 4;
    bytes_per = 2;
    break;
  case DiskType::Float32:
    h.datatype = 16;
    bytes_per = 4;
    break;
  }
  h.bitpix = static_cast<std::int16_t>(8 * bytes_per);
  h.vox_offset = 352.0f;
  h.scl_slope = 1.0f;
  h.scl_inter = 0.0f;
  h.xyzt_units = 2;  // mm
  const std::string descrip = options.description.substr(0, 79);
  std::memcpy(h.descrip, descrip.c_str(), descrip.size());
  set_xforms(grid.vox2ras.m, static_cast<std::int16_t>(options.frame), h);
  std::memcpy(h.magic, "n+1\0", 4);
  for (int d = 0; d < 3; ++d)
    if (grid.dim[d] > 32767) throw Error("image too large for NIfTI-1", path);

  const std::uint64_t total = static_cast<std::uint64_t>(grid.voxels()) * static_cast<std::uint64_t>(bytes_per);
  write_nifti_stream(path, h, static_cast<const unsigned char*>(voxels), total, options.force, options.gzip_level);
}

}  // namespace tmsplan::detail

namespace tmsplan {

void write_nifti_vectors(const std::string& path, const VectorVolume& volume, Frame frame,
                         const std::string& description, bool force) {
  const Grid& grid = volume.grid;
  if (volume.components < 1 || volume.data.size() != grid.voxels() * std::size_t(volume.components))
    throw Error("vector image has the wrong size", path);
  for (int a = 0; a < 3; ++a)
    if (grid.dim[a] > 32767) throw Error("vector image too large for NIfTI-1", path);
  detail::Nifti1Header h{};
  h.sizeof_hdr = 348;
  h.regular = 'r';
  h.dim[0] = 5;
  for (int a = 0; a < 3; ++a) h.dim[a + 1] = static_cast<std::int16_t>(grid.dim[a]);
  h.dim[4] = 1;
  h.dim[5] = static_cast<std::int16_t>(volume.components);
  h.dim[6] = h.dim[7] = 1;
  h.intent_code = static_cast<std::int16_t>(volume.intent_code);
  h.datatype = 16;
  h.bitpix = 32;
  for (int d = 4; d < 8; ++d) h.pixdim[d] = 1.0f;
  h.vox_offset = 352.0f;
  h.scl_slope = 1.0f;
  h.xyzt_units = 2;
  const std::string descrip = description.substr(0, 79);
  std::memcpy(h.descrip, descrip.c_str(), descrip.size());
  detail::set_xforms(grid.vox2ras.m, static_cast<std::int16_t>(frame), h);
  std::memcpy(h.magic, "n+1\0", 4);
  detail::write_nifti_stream(path, h, reinterpret_cast<const unsigned char*>(volume.data.data()),
                             4 * std::uint64_t(volume.data.size()), force, 1);
}

}  // namespace tmsplan
