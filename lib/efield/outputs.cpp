// Field maps for viewers: a GIfTI shape file on the pial surface, a NIfTI box around the target,
// and the QC picture of the field seen from the coil.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "tmsplan/efield.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/qc.hpp"

namespace tmsplan::efield {

void write_surface_field(const std::string& path, const Mesh& pial, const std::vector<int>& vertices,
                         const Eigen::Matrix3Xd& e, const Eigen::Matrix3Xd& normals, bool force) {
  // Two arrays over every pial vertex (0 beyond 40 mm of the target): |E| and the inward normal
  // component E.n, V/m per A/us. ASCII encoding keeps the file readable by any GIfTI reader.
  std::vector<float> mag(pial.vertices.size(), 0.0f), nor(pial.vertices.size(), 0.0f);
  for (std::size_t i = 0; i < vertices.size(); ++i) {
    const auto v = static_cast<std::size_t>(vertices[i]);
    mag[v] = static_cast<float>(e.col(static_cast<Eigen::Index>(i)).norm());
    nor[v] = static_cast<float>(e.col(static_cast<Eigen::Index>(i)).dot(normals.col(static_cast<Eigen::Index>(i))));
  }
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE GIFTI SYSTEM "
                  "\"http://www.nitrc.org/frs/download.php/115/gifti.dtd\">\n"
                  "<GIFTI Version=\"1.0\" NumberOfDataArrays=\"2\">\n<MetaData>\n"
                  "<MD><Name><![CDATA[Description]]></Name><Value><![CDATA[tmsplan efield: |E| and inward normal "
                  "component E.n (V/m per A/us) on pial.surf.gii, 0 beyond 40 mm of the target]]></Value></MD>\n"
                  "</MetaData>\n<LabelTable/>\n";
  for (int a = 0; a < 2; ++a) {
    const auto& v = a == 0 ? mag : nor;
    x += fmt::format(
        "<DataArray Intent=\"NIFTI_INTENT_SHAPE\" DataType=\"NIFTI_TYPE_FLOAT32\" ArrayIndexingOrder=\"RowMajorOrder\" "
        "Dimensionality=\"1\" "
        "Dim0=\"{}\" Encoding=\"ASCII\" Endian=\"LittleEndian\" ExternalFileName=\"\" ExternalFileOffset=\"\">\n"
        "<MetaData><MD><Name><![CDATA[Name]]></Name><Value><![CDATA[{}]]></Value></MD></MetaData>\n<Data>",
        v.size(), a == 0 ? "E_magnitude" : "E_normal_inward");
    for (std::size_t i = 0; i < v.size(); ++i) x += fmt::format("{}{:.5g}", i ? " " : "", v[i]);
    x += "</Data>\n</DataArray>\n";
  }
  x += "</GIFTI>\n";
  write_file_atomic(path, x, force);
}

void write_volume_field(const std::string& path, const Grid& grid, const Mask& brain, const Eigen::Vector3d& target,
                        double radius, const std::function<Eigen::Matrix3Xd(const Eigen::Matrix3Xd&)>& field,
                        bool force) {
  // A box around the target on the T1's axes at ~2 mm (every n-th voxel), |E| inside the brain mask
  // within `radius` of the target, 0 elsewhere.
  const Eigen::Vector3d sp = grid.spacing_mm();
  const Eigen::Matrix4d r2v = grid.vox2ras.m.inverse();
  const Eigen::Vector3d tc = (r2v * target.homogeneous()).head<3>();
  Eigen::Matrix4d sub = Eigen::Matrix4d::Identity();
  Grid g;
  for (int a = 0; a < 3; ++a) {
    const double step = std::max(1.0, std::round(2.0 / sp[a]));
    const double half = std::ceil(radius / (sp[a] * step));
    sub(a, a) = step;
    sub(a, 3) = std::round(tc[a]) - half * step;
    g.dim[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(2 * half + 1);
  }
  g.vox2ras = RasMatrix(grid.vox2ras.m * sub);
  std::vector<std::size_t> where;
  std::vector<Eigen::Vector3d> pts;
  for (std::int64_t k = 0; k < g.dim[2]; ++k)
    for (std::int64_t j = 0; j < g.dim[1]; ++j)
      for (std::int64_t i = 0; i < g.dim[0]; ++i) {
        const Eigen::Vector3d src = (sub * Eigen::Vector4d(double(i), double(j), double(k), 1.0)).head<3>();
        const auto si = static_cast<std::int64_t>(std::llround(src[0])),
                   sj = static_cast<std::int64_t>(std::llround(src[1])),
                   sk = static_cast<std::int64_t>(std::llround(src[2]));
        if (!brain.grid.inside(si, sj, sk) || !brain(si, sj, sk)) continue;
        const Eigen::Vector3d p = g.ras(i, j, k).v;
        if ((p - target).norm() > radius) continue;
        where.push_back(g.index(i, j, k));
        pts.push_back(p);
      }
  Image img(g, 0.0f);
  if (!pts.empty()) {
    Eigen::Matrix3Xd pm(3, static_cast<Eigen::Index>(pts.size()));
    for (std::size_t i = 0; i < pts.size(); ++i) pm.col(static_cast<Eigen::Index>(i)) = pts[i];
    const Eigen::Matrix3Xd e = field(pm);
    for (std::size_t i = 0; i < pts.size(); ++i)
      img.data[where[i]] = static_cast<float>(e.col(static_cast<Eigen::Index>(i)).norm());
  }
  WriteOptions wo;
  wo.force = force;
  wo.type = DiskType::Float32;
  wo.description = "tmsplan efield |E| V/m per A/us";
  write_image(path, img, wo);
}

void write_field_picture(const std::string& path, const Mesh& pial, const std::vector<int>& vertices,
                         const Eigen::VectorXd& values, const Eigen::Matrix4d& pose, const Coil& coil,
                         const Eigen::Vector3d& target, const Eigen::Matrix4d& rule_pose, bool force) {
  // The cortex within 40 mm of the target seen from the coil (coil x to the right, handle y up),
  // coloured by |E| (dark blue 0 .. yellow at the 98th percentile), the coil's windings in white, the
  // chosen handle direction white, the rule's grey, the target a cyan cross.
  const int size = 480;
  const double fov = 120.0, px = fov / size;
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(size * size * 3), 0);
  const Eigen::Matrix3d r = pose.topLeftCorner<3, 3>();
  const Eigen::Vector3d c = pose.block<3, 1>(0, 3);
  auto to_px = [&](const Eigen::Vector3d& p, double& u, double& v, double& depth) {
    const Eigen::Vector3d q = r.transpose() * (p - c);
    u = size / 2.0 + q.x() / px;
    v = size / 2.0 - q.y() / px;
    depth = q.z();
  };
  auto put = [&](int u, int v, const std::array<std::uint8_t, 3>& col) {
    if (u < 0 || v < 0 || u >= size || v >= size) return;
    const std::size_t o = static_cast<std::size_t>((v * size + u) * 3);
    rgb[o] = col[0], rgb[o + 1] = col[1], rgb[o + 2] = col[2];
  };
  // Colour scale to the 98th percentile: a few vertices at the edge of the view, close to the
  // windings, would otherwise squash the scale under the target.
  double vmax = 1.0;
  if (values.size()) {
    std::vector<double> sorted(values.data(), values.data() + values.size());
    std::sort(sorted.begin(), sorted.end());
    vmax = std::max(1e-12, sorted[static_cast<std::size_t>(0.98 * double(sorted.size() - 1))]);
  }
  std::vector<std::size_t> order(vertices.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> depth(vertices.size());
  std::vector<Eigen::Vector2d> uv(vertices.size());
  for (std::size_t i = 0; i < vertices.size(); ++i)
    to_px(pial.vertices[static_cast<std::size_t>(vertices[i])], uv[i].x(), uv[i].y(), depth[i]);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return depth[a] > depth[b]; });
  for (std::size_t i : order) {
    const double t = std::clamp(values[static_cast<Eigen::Index>(i)] / vmax, 0.0, 1.0);
    const std::array<std::uint8_t, 3> col = {
        static_cast<std::uint8_t>(255 * std::min(1.0, 1.6 * t)),
        static_cast<std::uint8_t>(255 * std::clamp(1.6 * t - 0.45, 0.0, 1.0)),
        static_cast<std::uint8_t>(255 * std::clamp(0.55 - t, 0.0, 1.0) + 60 * (1 - t))};
    const int u0 = static_cast<int>(std::lround(uv[i].x())), v0 = static_cast<int>(std::lround(uv[i].y()));
    for (int dv = -3; dv <= 3; ++dv)
      for (int du = -3; du <= 3; ++du)
        if (du * du + dv * dv <= 8) put(u0 + du, v0 + dv, col);
  }
  // Windings: circles around each wing's centre through the outermost dipoles of that wing.
  const double wr = std::max(5.0, coil.casing_radius_mm -
                                      std::max(std::abs(coil.wing_offset_mm.x()), std::abs(coil.wing_offset_mm.y())));
  for (double wx : {coil.wing_offset_mm.x(), coil.wing_offset_mm.y()})
    for (int s = 0; s < 720; ++s) {
      const double a = s * M_PI / 360;
      put(static_cast<int>(size / 2.0 + (wx + wr * std::cos(a)) / px),
          static_cast<int>(size / 2.0 - wr * std::sin(a) / px), {255, 255, 255});
    }
  auto handle = [&](const Eigen::Vector3d& y, const std::array<std::uint8_t, 3>& col) {
    const Eigen::Vector3d q = r.transpose() * y;
    for (double l = 0; l < 55; l += px)
      put(static_cast<int>(size / 2.0 + l * q.x() / px), static_cast<int>(size / 2.0 - l * q.y() / px), col);
  };
  handle(rule_pose.block<3, 1>(0, 1), {150, 150, 150});
  handle(pose.block<3, 1>(0, 1), {255, 255, 255});
  double tu, tv, td;
  to_px(target, tu, tv, td);
  for (int k = -10; k <= 10; ++k)
    for (int w = -1; w <= 1; ++w) {
      put(static_cast<int>(tu) + k, static_cast<int>(tv) + w, {0, 255, 255});
      put(static_cast<int>(tu) + w, static_cast<int>(tv) + k, {0, 255, 255});
    }
  write_file_atomic(path, encode_png(rgb, size, size), force);
}

}  // namespace tmsplan::efield
