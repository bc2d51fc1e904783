// Writes the generated part of the fuzz seed corpus: small valid files of each format, made by
// the library's own writers, plus byte-level variants of a NIfTI file that the writers never make
// (big-endian, an extension, qform only, scaled int16). Usage: fuzz-make-seeds CORPUS_DIR
// (subfolders nifti/, navigators/, itk_affine/, gifti/ must exist). The JSON readers are also seeded with
// the current data/*.json by scripts/dev/fuzz.sh (no copies kept in the corpus).
#include <Eigen/Geometry>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <utility>

#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/navigators.hpp"
#include "tmsplan/surface.hpp"
#include "tmsplan/warp.hpp"

using namespace tmsplan;

namespace {

Image small_image(std::int64_t nx, std::int64_t ny, std::int64_t nz, bool oblique) {
  Grid g;
  g.dim = {nx, ny, nz};
  g.vox2ras.m.setIdentity();
  g.vox2ras.m.topLeftCorner<3, 3>() = Eigen::Vector3d(1.0, 1.2, 2.0).asDiagonal();
  if (oblique) {
    const Eigen::Matrix3d r = Eigen::AngleAxisd(0.3, Eigen::Vector3d(1, 2, 3).normalized()).toRotationMatrix();
    g.vox2ras.m.topLeftCorner<3, 3>() = r * g.vox2ras.m.topLeftCorner<3, 3>();
  }
  g.vox2ras.m.topRightCorner<3, 1>() = Eigen::Vector3d(-4, 7.5, -2);
  Image im(g, 0.0f);
  for (std::size_t i = 0; i < im.data.size(); ++i) im.data[i] = float((i * 37) % 101);
  return im;
}

void write(const std::string& path, const Image& im, DiskType type) {
  WriteOptions o;
  o.force = true;
  o.type = type;
  o.gzip_level = 9;
  write_image(path, im, o);
}

// NIfTI-1 header fields wider than a byte: (offset, size), for the big-endian variant.
const std::pair<int, int> kFields[] = {{0, 4},   {32, 4},  {36, 2},  {40, 2},  {42, 2},  {44, 2},  {46, 2},  {48, 2},
                                       {50, 2},  {52, 2},  {54, 2},  {56, 4},  {60, 4},  {64, 4},  {68, 2},  {70, 2},
                                       {72, 2},  {74, 2},  {76, 4},  {80, 4},  {84, 4},  {88, 4},  {92, 4},  {96, 4},
                                       {100, 4}, {104, 4}, {108, 4}, {112, 4}, {116, 4}, {120, 2}, {124, 4}, {128, 4},
                                       {132, 4}, {136, 4}, {140, 4}, {144, 4}, {252, 2}, {254, 2}, {256, 4}, {260, 4},
                                       {264, 4}, {268, 4}, {272, 4}, {276, 4}, {280, 4}, {284, 4}, {288, 4}, {292, 4},
                                       {296, 4}, {300, 4}, {304, 4}, {308, 4}, {312, 4}, {316, 4}, {320, 4}, {324, 4}};

template <class T> void put(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz-make-seeds CORPUS_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string nifti = dir + "/nifti/", nav = dir + "/navigators/";

  // NIfTI: the three disk types, plain and gzipped, straight and oblique.
  write(nifti + "uint8.nii", small_image(3, 4, 5, false), DiskType::UInt8);
  write(nifti + "int16-oblique.nii.gz", small_image(4, 3, 2, true), DiskType::Int16);
  write(nifti + "float32-oblique.nii", small_image(2, 3, 4, true), DiskType::Float32);
  write(nifti + "float32.nii.gz", small_image(3, 3, 3, false), DiskType::Float32);
  {
    const std::string base = read_file(nifti + "uint8.nii");
    // Big-endian int16 copy of a 2x2x2 image with qform only and a scale.
    Image im = small_image(2, 2, 2, true);
    write(nifti + ".tmp.nii", im, DiskType::Int16);
    std::string be = read_file(nifti + ".tmp.nii");
    std::filesystem::remove(nifti + ".tmp.nii");
    put<std::int16_t>(be, 254, 0);  // sform_code 0: the qform decides
    put<float>(be, 112, 0.5f);      // scl_slope
    put<float>(be, 116, -3.0f);     // scl_inter
    write_file_atomic(nifti + "int16-qform-scaled.nii", be, true);
    for (const auto& [offset, size] : kFields) std::reverse(be.begin() + offset, be.begin() + offset + size);
    for (std::size_t v = 352; v + 1 < be.size(); v += 2) std::swap(be[v], be[v + 1]);
    write_file_atomic(nifti + "int16-big-endian.nii", be, true);
    // One 16-byte extension between the header and the voxels (vox_offset 368).
    std::string ext = base.substr(0, 348) + std::string("\x01\0\0\0", 4);
    std::string block(16, '\0');
    put<std::int32_t>(block, 0, 16);
    put<std::int32_t>(block, 4, 6);  // ecode 6: comment
    std::memcpy(block.data() + 8, "seed", 4);
    ext += block + base.substr(352);
    put<float>(ext, 108, 368.0f);
    write_file_atomic(nifti + "uint8-extension.nii", ext, true);
  }
  {
    Grid g = small_image(2, 2, 3, true).grid;
    DisplacementField field(g);
    for (int c = 0; c < 3; ++c)
      for (std::size_t i = 0; i < field.d[std::size_t(c)].size(); ++i)
        field.d[std::size_t(c)][i] = 0.25f * float(c + i);
    write_displacement_field(nifti + "displacement.nii.gz", field, Frame::Mni, true);
  }

  // Navigators: every writer, two markers (one with characters that need escaping).
  std::vector<nav::Marker> markers;
  for (int k = 0; k < 2; ++k) {
    Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
    m.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.4 + k, Eigen::Vector3d(k, 1, 2).normalized()).toRotationMatrix();
    m.topRightCorner<3, 1>() = Eigen::Vector3d(-38.5 + 70 * k, 12.25, 60.0);
    nav::Marker mk;
    mk.name = k == 0 ? "M1_hand_left" : "DLPFC <F3> & \"x\"";
    mk.pose = Pose(m);
    mk.target = Eigen::Vector3d(-36.0 + 70 * k, 10.0, 50.0);
    if (k == 0) mk.entry = Eigen::Vector3d(-40.0, 13.0, 66.0);
    markers.push_back(mk);
  }
  write_file_atomic(nav + "localite-instrument-ras.xml", nav::write_localite_instrument_markers(markers), true);
  write_file_atomic(nav + "localite-instrument-lps.xml",
                    nav::write_localite_instrument_markers(markers, {nav::LocaliteSpace::lps}), true);
  write_file_atomic(nav + "localite-entry-target.xml",
                    nav::write_localite_entry_targets(
                        {{"M1_hand_left", {-40, 13, 66}, {-36, 10, 50}}, {"F3", {-35, 40, 50}, {-30, 35, 40}}}),
                    true);
  write_file_atomic(nav + "brainsight-v12.txt", nav::write_brainsight_targets(markers), true);
  write_file_atomic(nav + "brainsight-v7.txt", nav::write_brainsight_targets(markers, {7, "NIfTI:Scanner", "seed"}),
                    true);
  nav::AntWriteOptions ant;
  ant.coil_type = "MagStim_D70";
  ant.image = nav::AntImageInfo{{0.1, 0.2, 0.3}, {-90, -126, -72}, {-1, 1, 1, 1}};
  write_file_atomic(nav + "ant.mrk", nav::write_ant_markers(markers, ant), true);
  {
    std::vector<nav::Marker> named;
    for (auto mk : markers) {
      mk.name = "target_" + std::to_string(named.size());
      named.push_back(mk);
    }
    write_file_atomic(nav + "markers.tsv", nav::write_markers_tsv(named), true);
  }

  // ITK affine.
  Eigen::Matrix4d a = Eigen::Matrix4d::Identity();
  a.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.2, Eigen::Vector3d::UnitZ()).toRotationMatrix() * 1.1;
  a.topRightCorner<3, 1>() = Eigen::Vector3d(3, -4, 5);
  write_itk_affine(dir + "/itk_affine/affine.txt", a, true);

  // GIfTI: a tetrahedron, zlib-compressed and plain base64, with and without metadata.
  Mesh tet;
  tet.vertices = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}};
  tet.triangles = {{{0, 2, 1}}, {{0, 1, 3}}, {{0, 3, 2}}, {{1, 2, 3}}};
  GiftiOptions go;
  go.force = true;
  write_gifti(dir + "/gifti/tet-gzip.surf.gii", tet, go);
  go.compress = false;
  go.structure = "CortexLeft";
  go.description = "fuzz seed";
  write_gifti(dir + "/gifti/tet-base64.surf.gii", tet, go);
  return 0;
}
