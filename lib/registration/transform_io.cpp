// Transform files that ITK and ANTs tools read: ITK affine text files and NIfTI displacement
// fields (5D vectors, intent VECTOR; read and written by lib/io's NIfTI code). Both hold LPS; the
// library works in RAS. Every LPS <-> RAS conversion goes through geometry.hpp.
#include <Eigen/Dense>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/geometry.hpp"
#include "tmsplan/nifti.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/transform_io.hpp"

namespace tmsplan {
namespace {

constexpr std::int16_t kIntentDispVect = 1006;
constexpr std::int16_t kIntentVector = 1007;  // what ITK (and so ANTs) writes and reads back correctly

constexpr double kQuantum = 8192.0;  // displacements stored in steps of 1/8192 mm

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
  // Components in LPS: x and y flip sign (geometry.hpp's to_lps on vectors). Values are rounded
  // to 2^-13 mm (below 0.00007 mm of error): the low mantissa bits then compress.
  VectorVolume v;
  v.grid = grid;
  v.components = 3;
  v.intent_code = kIntentVector;
  const std::size_t n = grid.voxels();
  v.data.resize(3 * n);
  parallel_for(std::int64_t(n), [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t i = b0; i < b1; ++i) {
      const LpsVector lps = to_lps(RasVector(field.at_voxel(std::size_t(i))));
      for (int c = 0; c < 3; ++c)
        v.data[std::size_t(c) * n + std::size_t(i)] = static_cast<float>(std::round(lps.v[c] * kQuantum) / kQuantum);
    }
  });
  write_nifti_vectors(path, v, frame, "tmsplan displacement (LPS mm)", force);
}

DisplacementField read_displacement_field(const std::string& path) {
  VectorVolume v = read_nifti_vectors(path);
  if (v.components != 3)
    throw Error(fmt::format("not a 3D displacement field ({} components per voxel; expected 3)", v.components), path);
  if (v.intent_code != kIntentDispVect && v.intent_code != kIntentVector)
    throw Error(fmt::format("NIfTI intent {} is not a displacement field (1006)", v.intent_code), path);
  if (v.datatype != 16 && v.datatype != 64) throw Error("displacement field must be float32 or float64", path);
  DisplacementField field;
  field.grid = v.grid;
  const std::size_t n = field.grid.voxels();
  for (auto& c : field.d) c.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Eigen::Vector3d lps(v.data[i], v.data[n + i], v.data[2 * n + i]);
    if (!lps.allFinite()) throw Error("non-finite displacement in field", path);
    const RasVector r = to_ras(LpsVector(lps));
    for (int c = 0; c < 3; ++c) field.d[std::size_t(c)][i] = static_cast<float>(r.v[c]);
  }
  return field;
}

}  // namespace tmsplan
