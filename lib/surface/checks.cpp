// Mesh checks: Euler characteristic, closed 2-manifold, self-intersections, enclosed volume, and
// how far the vertices lie from the mask boundary.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/surface.hpp"

namespace tmsplan {
namespace {

std::uint64_t undirected(int a, int b) {
  const auto lo = std::uint64_t(std::min(a, b)), hi = std::uint64_t(std::max(a, b));
  return lo << 32 | hi;
}

void check_indices(const Mesh& mesh) {
  const auto nv = int(mesh.vertices.size());
  for (const auto& t : mesh.triangles)
    for (int v : t)
      if (v < 0 || v >= nv) throw Error("mesh triangle refers to a vertex that does not exist");
}

}  // namespace

long euler_characteristic(const Mesh& mesh) {
  check_indices(mesh);
  std::vector<std::uint64_t> edges;
  edges.reserve(mesh.triangles.size() * 3);
  for (const auto& t : mesh.triangles)
    for (int a = 0; a < 3; ++a) edges.push_back(undirected(t[std::size_t(a)], t[std::size_t((a + 1) % 3)]));
  std::sort(edges.begin(), edges.end());
  const auto n_edges = long(std::unique(edges.begin(), edges.end()) - edges.begin());
  return long(mesh.vertices.size()) - n_edges + long(mesh.triangles.size());
}

MeshTopology mesh_topology(const Mesh& mesh) {
  check_indices(mesh);
  MeshTopology top;
  const std::size_t nv = mesh.vertices.size();
  // Directed half-edges (a -> b as the triangle runs), sorted by their undirected edge.
  struct Half {
    std::uint64_t key;
    bool forward;  // a < b
  };
  std::vector<Half> halves;
  halves.reserve(mesh.triangles.size() * 3);
  for (const auto& t : mesh.triangles) {
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) {
      ++top.degenerate_triangles;
      continue;
    }
    for (int a = 0; a < 3; ++a) {
      const int u = t[std::size_t(a)], w = t[std::size_t((a + 1) % 3)];
      halves.push_back({undirected(u, w), u < w});
    }
  }
  std::sort(halves.begin(), halves.end(),
            [](const Half& x, const Half& y) { return x.key != y.key ? x.key < y.key : x.forward < y.forward; });
  for (std::size_t i = 0; i < halves.size();) {
    std::size_t j = i, fwd = 0;
    while (j < halves.size() && halves[j].key == halves[i].key) fwd += halves[j++].forward ? 1 : 0;
    const std::size_t n = j - i;
    ++top.edges;
    if (n == 1)
      ++top.boundary_edges;
    else if (n > 2)
      ++top.nonmanifold_edges;
    else if (fwd != 1)
      ++top.misoriented_edges;
    i = j;
  }
  // Vertex fans: around v, triangle (v, a, b) links a -> b; a manifold vertex has one cycle.
  std::vector<std::size_t> first(nv + 1, 0);
  for (const auto& t : mesh.triangles)
    for (int v : t) ++first[std::size_t(v) + 1];
  for (std::size_t v = 0; v < nv; ++v) first[v + 1] += first[v];
  std::vector<std::pair<int, int>> link(first[nv]);
  std::vector<std::size_t> fill(first.begin(), first.end() - 1);
  for (const auto& t : mesh.triangles)
    for (int a = 0; a < 3; ++a)
      link[fill[std::size_t(t[std::size_t(a)])]++] = {t[std::size_t((a + 1) % 3)], t[std::size_t((a + 2) % 3)]};
  for (std::size_t v = 0; v < nv; ++v) {
    const std::size_t b = first[v], e = first[v + 1];
    if (b == e) {
      ++top.unused_vertices;
      continue;
    }
    std::sort(link.begin() + std::ptrdiff_t(b), link.begin() + std::ptrdiff_t(e));
    bool repeated = false;
    for (std::size_t i = b + 1; i < e; ++i) repeated = repeated || link[i].first == link[i - 1].first;
    if (repeated) {
      ++top.nonmanifold_vertices;
      continue;
    }
    // Walk a -> b -> ... from the first link; one cycle through all links means one fan.
    std::size_t steps = 0;
    int at = link[b].first;
    bool ok = true;
    do {
      const auto it =
          std::lower_bound(link.begin() + std::ptrdiff_t(b), link.begin() + std::ptrdiff_t(e), std::make_pair(at, -1));
      if (it == link.begin() + std::ptrdiff_t(e) || it->first != at) {
        ok = false;
        break;
      }
      at = it->second;
      ++steps;
    } while (at != link[b].first && steps <= e - b);
    if (!ok || steps != e - b) ++top.nonmanifold_vertices;
  }
  // Connected sheets (union-find over triangle edges).
  std::vector<int> parent(nv);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int x) {
    while (parent[std::size_t(x)] != x) x = parent[std::size_t(x)] = parent[std::size_t(parent[std::size_t(x)])];
    return x;
  };
  for (const auto& t : mesh.triangles)
    for (int a = 1; a < 3; ++a) {
      const int r0 = find(t[0]), r1 = find(t[std::size_t(a)]);
      if (r0 != r1) parent[std::size_t(std::max(r0, r1))] = std::min(r0, r1);
    }
  for (std::size_t v = 0; v < nv; ++v)
    if (first[v + 1] > first[v] && find(int(v)) == int(v)) ++top.components;
  return top;
}

bool is_closed_manifold(const Mesh& mesh) { return mesh_topology(mesh).closed_manifold(); }

namespace {

// Does segment p0-p1 cross the plane of triangle (a, b, c) properly (endpoints strictly on
// opposite sides) at a point strictly inside the triangle? Segments lying in the plane (within
// rounding) do not count, so coplanar neighbours and shared vertices never register.
bool segment_hits_triangle(const Eigen::Vector3d& p0, const Eigen::Vector3d& p1, const Eigen::Vector3d& a,
                           const Eigen::Vector3d& b, const Eigen::Vector3d& c) {
  const Eigen::Vector3d n = (b - a).cross(c - a);
  const double nn = n.norm();
  const double scale = (b - a).norm() + (c - a).norm() + (p1 - p0).norm();
  if (nn <= 1e-12 * scale * scale) return false;  // degenerate triangle
  const double tol = 1e-7 * scale;
  const double d0 = n.dot(p0 - a) / nn, d1 = n.dot(p1 - a) / nn;
  if (!((d0 > tol && d1 < -tol) || (d0 < -tol && d1 > tol))) return false;
  const Eigen::Vector3d x = p0 + (d0 / (d0 - d1)) * (p1 - p0);
  constexpr double eps = 1e-9;
  const double nn2 = nn * nn;
  const double u = n.dot((c - b).cross(x - b)) / nn2;
  const double v = n.dot((a - c).cross(x - c)) / nn2;
  const double w = 1.0 - u - v;
  return u > eps && v > eps && w > eps;
}

bool triangles_intersect(const Mesh& m, const std::array<int, 3>& s, const std::array<int, 3>& t) {
  int shared = 0;
  for (int x : s)
    for (int y : t) shared += x == y ? 1 : 0;
  if (shared >= 2) return false;  // neighbours across an edge
  auto P = [&](int v) -> const Eigen::Vector3d& { return m.vertices[std::size_t(v)]; };
  // Two non-coplanar triangles intersect iff an edge of one crosses the other. With a shared
  // vertex, the crossing at that vertex itself does not count (strict tests exclude it).
  for (int e = 0; e < 3; ++e) {
    if (segment_hits_triangle(P(s[std::size_t(e)]), P(s[std::size_t((e + 1) % 3)]), P(t[0]), P(t[1]), P(t[2])))
      return true;
    if (segment_hits_triangle(P(t[std::size_t(e)]), P(t[std::size_t((e + 1) % 3)]), P(s[0]), P(s[1]), P(s[2])))
      return true;
  }
  return false;
}

}  // namespace

std::size_t count_self_intersections(const Mesh& mesh, std::vector<std::pair<int, int>>* pairs) {
  check_indices(mesh);
  const std::size_t nt = mesh.triangles.size();
  if (pairs) pairs->clear();
  if (nt < 2) return 0;
  // Boxes of the triangles and a uniform grid with cells about twice the mean edge length.
  std::vector<Eigen::Vector3d> lo(nt), hi(nt);
  double edge_sum = 0;
  Eigen::Vector3d all_lo = Eigen::Vector3d::Constant(1e300), all_hi = Eigen::Vector3d::Constant(-1e300);
  for (std::size_t t = 0; t < nt; ++t) {
    const auto& tri = mesh.triangles[t];
    const Eigen::Vector3d& a = mesh.vertices[std::size_t(tri[0])];
    const Eigen::Vector3d& b = mesh.vertices[std::size_t(tri[1])];
    const Eigen::Vector3d& c = mesh.vertices[std::size_t(tri[2])];
    lo[t] = a.cwiseMin(b).cwiseMin(c);
    hi[t] = a.cwiseMax(b).cwiseMax(c);
    edge_sum += (b - a).norm() + (c - b).norm() + (a - c).norm();
    all_lo = all_lo.cwiseMin(lo[t]);
    all_hi = all_hi.cwiseMax(hi[t]);
  }
  const double cell = std::max(2.0 * edge_sum / double(3 * nt), 1e-6 * std::max(1.0, (all_hi - all_lo).norm()));
  Eigen::Array3i cells;
  for (int a = 0; a < 3; ++a) cells[a] = std::max(1, std::min(1 << 20, int((all_hi[a] - all_lo[a]) / cell) + 1));
  auto cell_of = [&](const Eigen::Vector3d& p) {
    Eigen::Array3i c;
    for (int a = 0; a < 3; ++a) c[a] = std::clamp(int((p[a] - all_lo[a]) / cell), 0, cells[a] - 1);
    return c;
  };
  auto cell_key = [&](int i, int j, int k) {
    return (std::uint64_t(k) * std::uint64_t(cells[1]) + std::uint64_t(j)) * std::uint64_t(cells[0]) + std::uint64_t(i);
  };
  std::vector<Eigen::Array3i> clo(nt), chi(nt);
  std::vector<std::pair<std::uint64_t, int>> entries;
  for (std::size_t t = 0; t < nt; ++t) {
    clo[t] = cell_of(lo[t]);
    chi[t] = cell_of(hi[t]);
    for (int k = clo[t][2]; k <= chi[t][2]; ++k)
      for (int j = clo[t][1]; j <= chi[t][1]; ++j)
        for (int i = clo[t][0]; i <= chi[t][0]; ++i) entries.push_back({cell_key(i, j, k), int(t)});
  }
  std::sort(entries.begin(), entries.end());
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (i == 0 || entries[i].first != entries[i - 1].first) starts.push_back(i);
  starts.push_back(entries.size());
  const std::int64_t n_groups = std::int64_t(starts.size()) - 1;
  std::vector<std::vector<std::pair<int, int>>> found(static_cast<std::size_t>(n_groups));
  parallel_for(n_groups, [&](std::int64_t g0, std::int64_t g1) {
    for (std::int64_t g = g0; g < g1; ++g) {
      const std::size_t b = starts[std::size_t(g)], e = starts[std::size_t(g) + 1];
      const std::uint64_t key = entries[b].first;
      for (std::size_t x = b; x < e; ++x)
        for (std::size_t y = x + 1; y < e; ++y) {
          const auto s = std::size_t(entries[x].second), t = std::size_t(entries[y].second);
          if ((lo[s].array() > hi[t].array()).any() || (lo[t].array() > hi[s].array()).any()) continue;
          // Count each pair once: in the first cell both boxes share.
          const Eigen::Array3i c0 = clo[s].max(clo[t]);
          if (cell_key(c0[0], c0[1], c0[2]) != key) continue;
          if (triangles_intersect(mesh, mesh.triangles[s], mesh.triangles[t]))
            found[std::size_t(g)].push_back({int(std::min(s, t)), int(std::max(s, t))});
        }
    }
  });
  std::size_t total = 0;
  for (const auto& f : found) total += f.size();
  if (pairs) {
    for (const auto& f : found) pairs->insert(pairs->end(), f.begin(), f.end());
    std::sort(pairs->begin(), pairs->end());
  }
  return total;
}

double enclosed_volume_ml(const Mesh& mesh) {
  check_indices(mesh);
  double six_v = 0;
  for (const auto& t : mesh.triangles)
    six_v +=
        mesh.vertices[std::size_t(t[0])].dot(mesh.vertices[std::size_t(t[1])].cross(mesh.vertices[std::size_t(t[2])]));
  return six_v / 6.0 / 1000.0;
}

BoundaryDistance distance_to_mask_boundary(const Mesh& mesh, const Mask& mask) {
  BoundaryDistance out;
  if (mesh.vertices.empty()) return out;
  if (mask.data.size() != mask.grid.voxels()) throw Error("mask size does not match its grid");
  // The boundary is the set of voxel faces between a voxel in and a voxel out (outside the grid
  // counts as out). For each vertex, the nearest such face within two voxels, exactly for
  // orthogonal grids (faces are rectangles; sheared grids clamp approximately).
  constexpr int window = 2;
  const Eigen::Matrix3d A = mask.grid.vox2ras.m.topLeftCorner<3, 3>();
  const Eigen::Vector3d t = mask.grid.vox2ras.m.block<3, 1>(0, 3);
  const Eigen::Matrix3d A_inv = A.inverse();
  const double far = (window + 0.5) * mask.grid.spacing_mm().minCoeff();
  auto in = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    return mask.grid.inside(i, j, k) && mask(i, j, k) != 0;
  };
  std::vector<double> dist(mesh.vertices.size());
  parallel_for(std::int64_t(mesh.vertices.size()), [&](std::int64_t v0, std::int64_t v1) {
    for (std::int64_t v = v0; v < v1; ++v) {
      const Eigen::Vector3d& p = mesh.vertices[std::size_t(v)];
      const Eigen::Vector3d ijk = A_inv * (p - t);
      const std::int64_t ci = std::int64_t(std::floor(ijk[0])), cj = std::int64_t(std::floor(ijk[1])),
                         ck = std::int64_t(std::floor(ijk[2]));
      double best2 = far * far;
      for (std::int64_t k = ck - window + 1; k <= ck + window; ++k)
        for (std::int64_t j = cj - window + 1; j <= cj + window; ++j)
          for (std::int64_t i = ci - window + 1; i <= ci + window; ++i) {
            const bool here = in(i, j, k);
            for (int a = 0; a < 3; ++a) {
              const bool there = in(i + (a == 0), j + (a == 1), k + (a == 2));
              if (here == there) continue;
              Eigen::Vector3d c = Eigen::Vector3d(double(i), double(j), double(k));
              c[a] += 0.5;
              const Eigen::Vector3d centre = A * c + t, U = 0.5 * A.col((a + 1) % 3), V = 0.5 * A.col((a + 2) % 3);
              const Eigen::Vector3d r = p - centre;
              const double s = std::clamp(r.dot(U) / U.squaredNorm(), -1.0, 1.0);
              const double w = std::clamp(r.dot(V) / V.squaredNorm(), -1.0, 1.0);
              best2 = std::min(best2, (r - s * U - w * V).squaredNorm());
            }
          }
      dist[std::size_t(v)] = std::sqrt(best2);
    }
  });
  double sum = 0;
  std::size_t close = 0;
  for (double x : dist) {
    sum += x;
    out.max_mm = std::max(out.max_mm, x);
    close += x <= 1.0 ? 1 : 0;
  }
  out.mean_mm = sum / double(dist.size());
  out.within_1mm = double(close) / double(dist.size());
  std::vector<double> sorted = dist;
  const std::size_t k = std::min(sorted.size() - 1, std::size_t(0.95 * double(sorted.size())));
  std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(k), sorted.end());
  out.p95_mm = sorted[k];
  return out;
}

MeshSummary summarize(const Mesh& mesh, const Mask* mask) {
  MeshSummary s;
  s.vertices = mesh.vertices.size();
  s.triangles = mesh.triangles.size();
  s.euler = euler_characteristic(mesh);
  const MeshTopology top = mesh_topology(mesh);
  s.closed_manifold = top.closed_manifold();
  s.components = top.components;
  s.self_intersections = count_self_intersections(mesh);
  s.volume_ml = enclosed_volume_ml(mesh);
  if (mask) s.boundary = distance_to_mask_boundary(mesh, *mask);
  return s;
}

}  // namespace tmsplan
