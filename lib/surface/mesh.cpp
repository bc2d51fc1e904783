// Meshing a mask: topology clean-up (largest component, cavities, optional handle filling),
// marching cubes on the binary mask with a consistent ambiguity rule, Taubin smoothing, normals.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "tmsplan/error.hpp"
#include "tmsplan/filters.hpp"
#include "tmsplan/log.hpp"
#include "tmsplan/parallel.hpp"
#include "tmsplan/surface.hpp"

namespace tmsplan {
namespace {

// ---------------------------------------------------------------------------------------------
// Marching-cubes cases, generated rather than typed in.
//
// Corner c of a cube sits at offset (c & 1, c >> 1 & 1, c >> 2 & 1). A crossed edge carries one
// vertex (at its midpoint: the mask is binary). For each face, the crossing points are joined by
// segments oriented with the inside on their left (seen from outside the cube); an ambiguous face
// (inside corners on a diagonal) always separates its inside corners, and that decision depends
// on the face alone, so neighbouring cubes agree and the surface is closed. The segments chain
// into loops; each loop, reversed, is a polygon oriented counter-clockwise seen from outside the
// mask. This makes the object 6-connected and the background 18-connected; one extra case (six
// corners in, the two outside ones on a body diagonal) gets a tube instead of two caps, which
// makes the background 26-connected, the pair the simple-point test below assumes.
// ---------------------------------------------------------------------------------------------

struct Tables {
  int edge_corner[12];  // lower corner of edge e
  int edge_axis[12];    // its direction
  // Per configuration: triangles whose entries are edge ids (0..11) or 12 + centre index, and for
  // each centre the edges it averages.
  std::vector<std::array<int, 3>> tris[256];
  std::vector<std::vector<int>> centres[256];
  // Four times the cube's share of the surface's V - E + F (crossing vertices are shared by four
  // cubes, face segments by two): summed over all cubes it gives the Euler characteristic
  // without building the mesh.
  int euler4[256];
};

Eigen::Vector3d corner_pos(int c) { return Eigen::Vector3d(c & 1, (c >> 1) & 1, (c >> 2) & 1); }

// long_functions: table (the marching-cubes lookup tables, built once; one piece reads as the derivation)
const Tables& tables() {
  static const Tables t = [] {
    Tables tb{};
    int edge_of[8][3];
    for (auto& row : edge_of) row[0] = row[1] = row[2] = -1;
    int e = 0;
    for (int a = 0; a < 3; ++a)
      for (int c = 0; c < 8; ++c)
        if (!(c & (1 << a))) {
          tb.edge_corner[e] = c;
          tb.edge_axis[e] = a;
          edge_of[c][a] = e++;
        }
    auto edge_between = [&](int c0, int c1) {
      const int diff = c0 ^ c1;
      const int a = diff == 1 ? 0 : diff == 2 ? 1 : 2;
      return edge_of[std::min(c0, c1)][a];
    };
    auto midpoint = [&](int edge) {
      Eigen::Vector3d p = corner_pos(tb.edge_corner[edge]);
      p[tb.edge_axis[edge]] += 0.5;
      return p;
    };
    // Faces: four corners counter-clockwise seen from outside the cube.
    std::array<std::array<int, 4>, 6> faces;
    for (int a = 0; a < 3; ++a)
      for (int s = 0; s < 2; ++s) {
        std::array<int, 4> q;
        int n = 0;
        for (int c = 0; c < 8; ++c)
          if (((c >> a) & 1) == s) q[std::size_t(n++)] = c;
        Eigen::Vector3d u = Eigen::Vector3d::Unit((a + 1) % 3), v = Eigen::Vector3d::Unit((a + 2) % 3);
        if (s == 0) std::swap(u, v);  // u x v is the outward normal
        Eigen::Vector3d centre = Eigen::Vector3d::Zero();
        for (int c : q) centre += corner_pos(c) / 4.0;
        std::sort(q.begin(), q.end(), [&](int c0, int c1) {
          const Eigen::Vector3d d0 = corner_pos(c0) - centre, d1 = corner_pos(c1) - centre;
          return std::atan2(d0.dot(v), d0.dot(u)) < std::atan2(d1.dot(v), d1.dot(u));
        });
        faces[std::size_t(2 * a + s)] = q;
      }
    tb.euler4[0] = tb.euler4[255] = 0;
    for (int config = 1; config < 255; ++config) {
      auto in = [&](int c) { return (config >> c) & 1; };
      struct Count {
        Tables& tb;
        int config;
        ~Count() {
          int crossed = 0;
          for (int e = 0; e < 12; ++e)
            crossed +=
                ((config >> tb.edge_corner[e]) & 1) != ((config >> (tb.edge_corner[e] | (1 << tb.edge_axis[e]))) & 1)
                    ? 1
                    : 0;
          std::vector<std::pair<int, int>> pairs;
          for (const auto& t : tb.tris[config])
            for (int a = 0; a < 3; ++a)
              pairs.push_back({std::min(t[std::size_t(a)], t[std::size_t((a + 1) % 3)]),
                               std::max(t[std::size_t(a)], t[std::size_t((a + 1) % 3)])});
          std::sort(pairs.begin(), pairs.end());
          const int unique_edges = int(std::unique(pairs.begin(), pairs.end()) - pairs.begin());
          const int interior = unique_edges - crossed;  // every face segment is a triangle edge
          tb.euler4[config] = crossed + 4 * int(tb.centres[config].size()) - 2 * crossed - 4 * interior +
                              4 * int(tb.tris[config].size());
        }
      } count_on_exit{tb, config};
      const int outside = 8 - __builtin_popcount(unsigned(config));
      if (outside == 2) {
        int c0 = -1;
        for (int c = 0; c < 8; ++c)
          if (!in(c)) {
            c0 = c;
            break;
          }
        if (!in(7 - c0) && c0 != 7 - c0) {
          // Tube between the caps of the two outside corners, along the body diagonal.
          const Eigen::Vector3d A = corner_pos(c0), B = corner_pos(7 - c0), axis = (B - A).normalized();
          std::vector<int> ring;
          for (int a = 0; a < 3; ++a) {
            ring.push_back(edge_between(c0, c0 ^ (1 << a)));
            ring.push_back(edge_between(7 - c0, (7 - c0) ^ (1 << a)));
          }
          Eigen::Vector3d u = axis.unitOrthogonal(), w = axis.cross(u);
          auto angle = [&](int edge) {
            const Eigen::Vector3d d = midpoint(edge) - A;
            return std::atan2(d.dot(w), d.dot(u));
          };
          std::sort(ring.begin(), ring.end(), [&](int x, int y) { return angle(x) < angle(y); });
          for (int i = 0; i < 6; ++i) {
            std::array<int, 3> tri{ring[std::size_t(i)], ring[std::size_t((i + 1) % 6)],
                                   ring[std::size_t((i + 2) % 6)]};
            const Eigen::Vector3d p0 = midpoint(tri[0]), p1 = midpoint(tri[1]), p2 = midpoint(tri[2]);
            const Eigen::Vector3d centroid = (p0 + p1 + p2) / 3.0;
            const Eigen::Vector3d on_axis = A + axis * (centroid - A).dot(axis);
            if ((p1 - p0).cross(p2 - p0).dot(on_axis - centroid) < 0) std::swap(tri[1], tri[2]);
            tb.tris[config].push_back(tri);
          }
          continue;
        }
      }
      int next[12];
      std::fill(next, next + 12, -1);
      for (const auto& q : faces) {
        int fe[4], kind[4];  // kind: +1 leaving the inside (walking counter-clockwise), -1 entering
        for (int i = 0; i < 4; ++i) {
          const int c0 = q[std::size_t(i)], c1 = q[std::size_t((i + 1) % 4)];
          fe[i] = edge_between(c0, c1);
          kind[i] = in(c0) == in(c1) ? 0 : in(c0) ? 1 : -1;
        }
        for (int i = 0; i < 4; ++i) {
          if (kind[i] != 1) continue;
          for (int s = 1; s < 4; ++s) {
            const int j = (i - s + 4) % 4;
            if (kind[j] == -1) {
              next[fe[i]] = fe[j];
              break;
            }
          }
        }
      }
      bool used[12] = {false};
      for (int start = 0; start < 12; ++start) {
        if (next[start] < 0 || used[start]) continue;
        std::vector<int> loop;
        for (int x = start; !used[x]; x = next[x]) {
          used[x] = true;
          loop.push_back(x);
        }
        std::reverse(loop.begin(), loop.end());
        if (loop.size() == 3) {
          tb.tris[config].push_back({loop[0], loop[1], loop[2]});
        } else if (loop.size() == 4) {
          tb.tris[config].push_back({loop[0], loop[1], loop[2]});
          tb.tris[config].push_back({loop[0], loop[2], loop[3]});
        } else {
          const int centre = 12 + int(tb.centres[config].size());
          tb.centres[config].push_back(loop);
          for (std::size_t i = 0; i < loop.size(); ++i)
            tb.tris[config].push_back({centre, loop[i], loop[(i + 1) % loop.size()]});
        }
      }
    }
    return tb;
  }();
  return t;
}

// A mask in a box with one empty voxel of padding all round, and where the box sits in the grid.
struct Padded {
  Mask mask;                             // own grid: vox2ras of the padded box
  std::array<std::int64_t, 3> offset{};  // padded voxel (0,0,0) is this voxel of the input grid
};

Padded pad_to_bounding_box(const Mask& mask) {
  const Crop box = bounding_crop(mask, 0);
  Padded p;
  for (int a = 0; a < 3; ++a) p.offset[std::size_t(a)] = box.offset[std::size_t(a)] - 1;
  Grid g;
  for (int a = 0; a < 3; ++a) g.dim[std::size_t(a)] = box.grid.dim[std::size_t(a)] + 2;
  Eigen::Matrix4d shift = Eigen::Matrix4d::Identity();
  for (int a = 0; a < 3; ++a) shift(a, 3) = double(p.offset[std::size_t(a)]);
  g.vox2ras = RasMatrix(mask.grid.vox2ras.m * shift);
  p.mask = Mask(g, 0);
  for (std::int64_t k = 1; k + 1 < g.dim[2]; ++k)
    for (std::int64_t j = 1; j + 1 < g.dim[1]; ++j)
      for (std::int64_t i = 1; i + 1 < g.dim[0]; ++i)
        p.mask(i, j, k) = mask(i + p.offset[0], j + p.offset[1], k + p.offset[2]) ? 1 : 0;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Handle filling: the background grows inwards from the border of the box by simple points only
// (Bertrand & Malandain 1994: x is simple for an object that is 6-connected with a 26-connected
// background iff T6(x, X) = 1 and T26(x, background) = 1), farthest from the object first. The
// object's complement-to-be starts as a ball and stays one, so the result has genus 0; the
// background voxels the front cannot take without changing topology stay inside, as thin
// membranes across tunnels where the fronts meet, i.e. where the tunnel is narrowest.
// ---------------------------------------------------------------------------------------------

struct NeighbourBits {
  std::array<std::int64_t, 27> offset{};
  std::uint32_t adj6[27]{}, adj26[27]{};
  std::uint32_t n18 = 0, n26 = 0, face = 0;
};

const NeighbourBits& neighbour_bits(const std::array<std::int64_t, 3>& dim) {
  thread_local NeighbourBits nb;
  thread_local std::array<std::int64_t, 3> for_dim{-1, -1, -1};
  if (for_dim == dim) return nb;
  for_dim = dim;
  auto id = [](int dx, int dy, int dz) { return (dx + 1) + 3 * (dy + 1) + 9 * (dz + 1); };
  nb = NeighbourBits{};
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int n = id(dx, dy, dz);
        nb.offset[std::size_t(n)] = dx + dim[0] * (dy + dim[1] * dz);
        const int l1 = std::abs(dx) + std::abs(dy) + std::abs(dz);
        if (l1 == 0) continue;
        nb.n26 |= 1u << n;
        if (l1 <= 2) nb.n18 |= 1u << n;
        if (l1 == 1) nb.face |= 1u << n;
        for (int ez = -1; ez <= 1; ++ez)
          for (int ey = -1; ey <= 1; ++ey)
            for (int ex = -1; ex <= 1; ++ex) {
              const int m = id(ex, ey, ez);
              const int d = std::abs(ex - dx) + std::abs(ey - dy) + std::abs(ez - dz);
              const int dmax = std::max({std::abs(ex - dx), std::abs(ey - dy), std::abs(ez - dz)});
              if (m == 13 || m == n || dmax > 1) continue;
              nb.adj26[n] |= 1u << m;
              if (d == 1) nb.adj6[n] |= 1u << m;
            }
      }
  return nb;
}

// Number of components of `set` (adjacency `adj`) that contain a bit of `seeds`, counted up to 2.
int components_upto2(std::uint32_t set, std::uint32_t seeds, const std::uint32_t* adj) {
  int n = 0;
  std::uint32_t remaining = set;
  while (seeds & remaining) {
    const std::uint32_t seed = (seeds & remaining) & (~(seeds & remaining) + 1u);
    std::uint32_t comp = seed, frontier = seed;
    while (frontier) {
      const int b = __builtin_ctz(frontier);
      frontier &= frontier - 1u;
      const std::uint32_t grow = adj[b] & remaining & ~comp;
      comp |= grow;
      frontier |= grow;
    }
    remaining &= ~comp;
    if (++n >= 2) return n;
  }
  return n;
}

// Chamfer (3-4-5) distance to the object in thirds of a voxel: cheap, and good enough to order
// the growth.
std::vector<std::uint16_t> chamfer_distance(const Mask& object) {
  const auto& d = object.grid.dim;
  const std::size_t n = object.data.size();
  std::vector<std::uint16_t> dist(n);
  for (std::size_t v = 0; v < n; ++v) dist[v] = object.data[v] ? 0 : 65535;
  std::int64_t off[13];
  int w[13], m = 0;
  for (int dz = -1; dz <= 0; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        if (dz == 0 && (dy > 0 || (dy == 0 && dx >= 0))) continue;
        off[m] = dx + d[0] * (dy + d[1] * dz);
        const int l1 = std::abs(dx) + std::abs(dy) + std::abs(dz);
        w[m++] = l1 == 1 ? 3 : l1 == 2 ? 4 : 5;
      }
  // Interior voxels only (the border keeps its start value). Per row: the minimum over the twelve
  // neighbours in rows already done (whole row at a time), then the in-row neighbour in scan order.
  // The same minima as a voxel-by-voxel raster scan.
  std::vector<int> row(std::size_t(std::max<std::int64_t>(d[0], 0)));
  for (int pass = 0; pass < 2; ++pass)
    for (std::int64_t kk = 1; kk + 1 < d[2]; ++kk)
      for (std::int64_t jj = 1; jj + 1 < d[1]; ++jj) {
        const std::int64_t j = pass ? d[1] - 1 - jj : jj, k = pass ? d[2] - 1 - kk : kk;
        const std::size_t base = object.grid.index(0, j, k);
        for (std::int64_t i = 1; i + 1 < d[0]; ++i) row[std::size_t(i)] = dist[base + std::size_t(i)];
        for (int q = 0; q < 12; ++q) {
          const std::int64_t o = pass ? -off[q] : off[q];
          const std::uint16_t* src = dist.data() + std::int64_t(base) + o;
          for (std::int64_t i = 1; i + 1 < d[0]; ++i)
            row[std::size_t(i)] = std::min(row[std::size_t(i)], int(src[i]) + w[q]);
        }
        if (pass == 0) {
          for (std::int64_t i = 1; i + 1 < d[0]; ++i)
            dist[base + std::size_t(i)] = std::uint16_t(
                std::min(std::min(row[std::size_t(i)], int(dist[base + std::size_t(i - 1)]) + w[12]), 65535));
        } else {
          for (std::int64_t i = d[0] - 2; i >= 1; --i)
            dist[base + std::size_t(i)] = std::uint16_t(
                std::min(std::min(row[std::size_t(i)], int(dist[base + std::size_t(i + 1)]) + w[12]), 65535));
        }
      }
  return dist;
}

// Euler characteristic of the (6,26) surface of a binary volume (as march() would build it).
long surface_euler(const std::vector<std::uint8_t>& inside, const std::array<std::int64_t, 3>& d) {
  const Tables& tb = tables();
  std::vector<long> per_slab(std::size_t(std::max<std::int64_t>(d[2] - 1, 0)), 0);
  parallel_for(d[2] - 1, [&](std::int64_t z0, std::int64_t z1) {
    for (std::int64_t k = z0; k < z1; ++k) {
      long sum = 0;
      for (std::int64_t j = 0; j + 1 < d[1]; ++j)
        for (std::int64_t i = 0; i + 1 < d[0]; ++i) {
          int config = 0;
          for (int c = 0; c < 8; ++c)
            if (inside[std::size_t((i + (c & 1)) + d[0] * ((j + ((c >> 1) & 1)) + d[1] * (k + ((c >> 2) & 1))))])
              config |= 1 << c;
          sum += tb.euler4[config];
        }
      per_slab[std::size_t(k)] = sum;
    }
  });
  return std::accumulate(per_slab.begin(), per_slab.end(), 0L) / 4;
}

// fill_handles' voxel states.
enum : std::uint8_t { kObject = 0, kFree = 1, kQueued = 2, kBackground = 3, kWaiting = 4 };

// One piece? Floods the band (the free voxels) from the object through 6-neighbours.
bool band_is_one_piece(const std::vector<std::uint8_t>& state, const NeighbourBits& nb) {
  const std::size_t n = state.size();
  std::vector<std::size_t> stack;
  std::size_t band = 0, reached = 0;
  std::vector<std::uint8_t> seen(n, 0);
  for (std::size_t v = 0; v < n; ++v) {
    if (state[v] != kFree) continue;
    ++band;
    bool next_to_object = false;
    for (int m : {4, 10, 12, 14, 16, 22})
      next_to_object = next_to_object || state[std::size_t(std::int64_t(v) + nb.offset[std::size_t(m)])] == kObject;
    if (next_to_object) {
      seen[v] = 1;
      stack.push_back(v);
    }
  }
  while (!stack.empty()) {
    const std::size_t v = stack.back();
    stack.pop_back();
    ++reached;
    for (int m : {4, 10, 12, 14, 16, 22}) {
      const auto w = std::size_t(std::int64_t(v) + nb.offset[std::size_t(m)]);
      if (state[w] == kFree && !seen[w]) {
        seen[w] = 1;
        stack.push_back(w);
      }
    }
  }
  return reached == band;
}

std::vector<std::uint8_t> initial_state(const Mask& object, const std::vector<std::uint16_t>& dist,
                                        const NeighbourBits& nb) {
  const auto& d = object.grid.dim;
  const std::size_t n = object.data.size();
  // Start the background as everything farther than a few voxels from the object and connected
  // to the border, provided what is left (object plus band) is already a ball: one 6-connected
  // piece whose surface has Euler characteristic 2. Otherwise try a wider band, and in the end
  // start from the border layer alone (always a ball, slower).
  std::vector<std::uint8_t> state(n);
  std::vector<std::size_t> border;
  for (std::int64_t k = 0; k < d[2]; ++k)
    for (std::int64_t j = 0; j < d[1]; ++j)
      for (std::int64_t i = 0; i < d[0]; ++i)
        if (i == 0 || j == 0 || k == 0 || i == d[0] - 1 || j == d[1] - 1 || k == d[2] - 1) {
          border.push_back(object.grid.index(i, j, k));
          if (k > 0 && k < d[2] - 1 && j > 0 && j < d[1] - 1 && i == 0) i = d[0] - 2;  // skip the inside of the row
        }
  for (const int band_vox : {3, 10, -1}) {
    for (std::size_t v = 0; v < n; ++v) state[v] = object.data[v] ? kObject : kFree;
    for (std::size_t v : border) state[v] = kBackground;
    std::vector<std::size_t> stack;
    const int limit = 3 * band_vox;
    if (band_vox >= 0) {
      // Seeds: the layer just inside the border; from interior voxels all 26 neighbours exist.
      for (std::int64_t k = 1; k < d[2] - 1; ++k)
        for (std::int64_t j = 1; j < d[1] - 1; ++j)
          for (std::int64_t i = 1; i < d[0] - 1; ++i) {
            if (!(i == 1 || j == 1 || k == 1 || i == d[0] - 2 || j == d[1] - 2 || k == d[2] - 2)) continue;
            const std::size_t v = object.grid.index(i, j, k);
            if (state[v] == kFree && dist[v] > limit) {
              state[v] = kBackground;
              stack.push_back(v);
            }
          }
    }
    while (!stack.empty()) {
      const std::size_t v = stack.back();
      stack.pop_back();
      for (int m = 0; m < 27; ++m) {
        const auto w = std::size_t(std::int64_t(v) + nb.offset[std::size_t(m)]);
        if (state[w] == kFree && dist[w] > limit) {
          state[w] = kBackground;
          stack.push_back(w);
        }
      }
    }
    if (band_vox < 0) break;
    if (!band_is_one_piece(state, nb)) {
      log::debug(fmt::format("surface: a {}-voxel band is not one piece", band_vox));
      continue;
    }
    std::vector<std::uint8_t> inside(n);
    for (std::size_t v = 0; v < n; ++v) inside[v] = state[v] != kBackground;
    const long euler = surface_euler(inside, d);
    if (euler == 2) break;
    log::debug(fmt::format("surface: a {}-voxel band has Euler characteristic {}", band_vox, euler));
  }
  return state;
}

// Grows the background into the free voxels from the farthest from the object inwards (a bucket
// queue on the chamfer distance), taking only simple points; what is not background at the end is
// the object with its handles (and cavities) filled.
void grow_background(std::vector<std::uint8_t>& state, const std::vector<std::uint16_t>& dist,
                     const NeighbourBits& nb) {
  const std::size_t n = state.size();
  const int n_buckets = 65536;
  std::vector<std::vector<std::uint32_t>> bucket(static_cast<std::size_t>(n_buckets));
  std::vector<std::size_t> head(std::size_t(n_buckets), 0);
  int top = -1;
  auto push = [&](std::size_t v) {
    state[v] = kQueued;
    const int b = dist[v];
    bucket[std::size_t(b)].push_back(std::uint32_t(v));
    top = std::max(top, b);
  };
  for (std::size_t v = 0; v < n; ++v)
    if (state[v] == kFree) {
      bool touches = false;
      for (int m = 0; m < 27 && !touches; ++m)
        touches = state[std::size_t(std::int64_t(v) + nb.offset[std::size_t(m)])] == kBackground;
      if (touches) push(v);
    }

  while (true) {
    while (top >= 0 && head[std::size_t(top)] == bucket[std::size_t(top)].size()) {
      bucket[std::size_t(top)].clear();
      head[std::size_t(top)] = 0;
      --top;
    }
    if (top < 0) break;
    const int b = top;
    const std::size_t v = bucket[std::size_t(b)][head[std::size_t(b)]++];
    if (state[v] != kQueued) continue;
    std::uint32_t bg = 0;
    for (int m = 0; m < 27; ++m)
      if (state[std::size_t(std::int64_t(v) + nb.offset[std::size_t(m)])] == kBackground) bg |= 1u << m;
    bg &= nb.n26;
    const std::uint32_t rest = nb.n26 & ~bg;
    const bool simple =
        components_upto2(bg, bg, nb.adj26) == 1 && components_upto2(rest & nb.n18, nb.face, nb.adj6) == 1;
    if (!simple) {
      state[v] = kWaiting;
      continue;
    }
    state[v] = kBackground;
    for (int m = 0; m < 27; ++m) {
      const std::size_t w = std::size_t(std::int64_t(v) + nb.offset[std::size_t(m)]);
      if (state[w] == kFree || state[w] == kWaiting) push(w);
    }
  }
}

std::size_t fill_handles(Mask& object) {
  const std::size_t n = object.data.size();
  const std::vector<std::uint16_t> dist = chamfer_distance(object);
  const NeighbourBits& nb = neighbour_bits(object.grid.dim);
  std::vector<std::uint8_t> state = initial_state(object, dist, nb);
  grow_background(state, dist, nb);
  std::size_t filled = 0;
  for (std::size_t v = 0; v < n; ++v)
    if (state[v] != kBackground && !object.data[v]) {
      object.data[v] = 1;
      ++filled;
    }
  return filled;
}

// Marching cubes over the padded binary mask; vertices in the padded box's voxel coordinates.
Mesh march(const Mask& m) {
  const Tables& tb = tables();
  const auto& d = m.grid.dim;
  const std::int64_t cubes_z = d[2] - 1;
  struct Slab {
    std::vector<std::array<std::uint64_t, 3>> tris;
    std::vector<std::pair<std::uint64_t, Eigen::Vector3d>> centres;
  };
  std::vector<Slab> slabs(static_cast<std::size_t>(std::max<std::int64_t>(cubes_z, 0)));
  auto lin = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return std::uint64_t(i + d[0] * (j + d[1] * k)); };
  parallel_for(cubes_z, [&](std::int64_t z0, std::int64_t z1) {
    for (std::int64_t k = z0; k < z1; ++k) {
      Slab& slab = slabs[std::size_t(k)];
      for (std::int64_t j = 0; j + 1 < d[1]; ++j)
        for (std::int64_t i = 0; i + 1 < d[0]; ++i) {
          int config = 0;
          for (int c = 0; c < 8; ++c)
            if (m(i + (c & 1), j + ((c >> 1) & 1), k + ((c >> 2) & 1))) config |= 1 << c;
          if (config == 0 || config == 255) continue;
          auto edge_key = [&](int e) {
            const int c = tb.edge_corner[e];
            return lin(i + (c & 1), j + ((c >> 1) & 1), k + ((c >> 2) & 1)) * 8u + std::uint64_t(tb.edge_axis[e]);
          };
          const auto& centres = tb.centres[config];
          for (std::size_t ci = 0; ci < centres.size(); ++ci) {
            Eigen::Vector3d p = Eigen::Vector3d::Zero();
            for (int e : centres[ci]) {
              Eigen::Vector3d q = corner_pos(tb.edge_corner[e]) + Eigen::Vector3d(double(i), double(j), double(k));
              q[tb.edge_axis[e]] += 0.5;
              p += q;
            }
            slab.centres.push_back({lin(i, j, k) * 8u + 3u + ci, p / double(centres[ci].size())});
          }
          for (const auto& t : tb.tris[config]) {
            std::array<std::uint64_t, 3> keys;
            for (int a = 0; a < 3; ++a)
              keys[std::size_t(a)] = t[std::size_t(a)] < 12
                                         ? edge_key(t[std::size_t(a)])
                                         : lin(i, j, k) * 8u + 3u + std::uint64_t(t[std::size_t(a)] - 12);
            slab.tris.push_back(keys);
          }
        }
    }
  });
  std::size_t n_tris = 0, n_centres = 0;
  for (const auto& s : slabs) {
    n_tris += s.tris.size();
    n_centres += s.centres.size();
  }
  std::vector<std::uint64_t> keys;
  keys.reserve(n_tris * 3);
  std::vector<std::pair<std::uint64_t, Eigen::Vector3d>> centres;
  centres.reserve(n_centres);
  for (const auto& s : slabs) {
    for (const auto& t : s.tris) keys.insert(keys.end(), t.begin(), t.end());
    centres.insert(centres.end(), s.centres.begin(), s.centres.end());
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::sort(centres.begin(), centres.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  Mesh mesh;
  mesh.vertices.resize(keys.size());
  parallel_for(std::int64_t(keys.size()), [&](std::int64_t v0, std::int64_t v1) {
    for (std::int64_t v = v0; v < v1; ++v) {
      const std::uint64_t key = keys[std::size_t(v)];
      const std::uint64_t slot = key % 8u, l = key / 8u;
      if (slot < 3) {
        Eigen::Vector3d p(double(l % std::uint64_t(d[0])), double((l / std::uint64_t(d[0])) % std::uint64_t(d[1])),
                          double(l / std::uint64_t(d[0] * d[1])));
        p[int(slot)] += 0.5;
        mesh.vertices[std::size_t(v)] = p;
      } else {
        const auto it = std::lower_bound(centres.begin(), centres.end(), key,
                                         [](const auto& a, std::uint64_t k) { return a.first < k; });
        mesh.vertices[std::size_t(v)] = it->second;
      }
    }
  });
  mesh.triangles.resize(n_tris);
  std::size_t t = 0;
  for (const auto& s : slabs)
    for (const auto& tri : s.tris) {
      for (int a = 0; a < 3; ++a)
        mesh.triangles[t][std::size_t(a)] =
            int(std::lower_bound(keys.begin(), keys.end(), tri[std::size_t(a)]) - keys.begin());
      ++t;
    }
  return mesh;
}

}  // namespace

Mesh mesh_from_mask(const Mask& mask, const MeshOptions& options, MeshReport* report) {
  const auto start = std::chrono::steady_clock::now();
  if (mask.data.size() != mask.grid.voxels()) throw Error("mask size does not match its grid");
  MeshReport rep;
  rep.mask_voxels = count(mask);
  if (rep.mask_voxels == 0) throw Error("cannot make a surface from an empty mask");
  const Eigen::Matrix3d linear = mask.grid.vox2ras.m.topLeftCorner<3, 3>();
  const double det = linear.determinant();
  if (!std::isfinite(det) || std::abs(det) < 1e-12)
    throw Error("cannot make a surface on a grid with a singular vox2ras");

  auto lap = [t = std::chrono::steady_clock::now()](const char* what) mutable {
    const auto n = std::chrono::steady_clock::now();
    log::debug(fmt::format("surface: {} {:.2f} s", what, std::chrono::duration<double>(n - t).count()));
    t = n;
  };
  Padded p = pad_to_bounding_box(mask);
  lap("box");
  if (options.keep_largest_component) {
    p.mask = largest_component(p.mask);
    rep.removed_voxels = rep.mask_voxels - count(p.mask);
  }
  if (options.fill_holes && !options.genus_zero) {  // handle filling fills cavities as well
    const std::size_t before = count(p.mask);
    p.mask = fill_holes(p.mask);
    rep.filled_hole_voxels = count(p.mask) - before;
  }
  lap("components and cavities");
  // Handle filling fills the cavities as well (they are counted with the handles then).
  if (options.genus_zero) rep.filled_handle_voxels = fill_handles(p.mask);
  lap("handles");

  Mesh mesh = march(p.mask);
  lap("marching cubes");
  // Padded-box voxel coordinates -> world RAS; a mirroring grid flips the winding.
  const Eigen::Matrix4d& v2r = p.mask.grid.vox2ras.m;
  for (auto& v : mesh.vertices) v = (v2r * v.homogeneous()).head<3>();
  if (det < 0)
    for (auto& t : mesh.triangles) std::swap(t[1], t[2]);

  if (options.smoothing_iterations > 0) {
    const double h = mask.grid.spacing_mm().minCoeff();
    taubin_smooth(mesh, options.smoothing_iterations, options.taubin_lambda, options.taubin_mu,
                  options.max_displacement_vox > 0 ? options.max_displacement_vox * h : 0.0);
  }
  lap("smoothing");
  rep.euler = euler_characteristic(mesh);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::debug(
      fmt::format("surface: {} vertices, {} triangles, Euler {}, {} voxels dropped, {} cavity and {} handle voxels "
                  "filled, {:.2f} s",
                  mesh.vertices.size(), mesh.triangles.size(), rep.euler, rep.removed_voxels, rep.filled_hole_voxels,
                  rep.filled_handle_voxels, rep.seconds));
  if (report) *report = rep;
  return mesh;
}

Mesh scalp_surface(const Mask& head, MeshReport* report) {
  MeshOptions o;
  o.genus_zero = true;
  return mesh_from_mask(head, o, report);
}

Mesh pial_surface(const Mask& gm, const Mask& wm, MeshReport* report) {
  if (!gm.grid.same_as(wm.grid)) throw Error("grey and white matter masks are on different grids");
  return mesh_from_mask(mask_or(gm, wm), MeshOptions{}, report);
}

Mesh white_surface(const Mask& wm, MeshReport* report) { return mesh_from_mask(wm, MeshOptions{}, report); }

namespace {
// Vertex neighbours (CSR), each list sorted and without repeats: the same mesh gives the same sums
// in the same order. Each triangle names two neighbours of each of its corners; the lists are
// filled per vertex, then each short list is sorted (per-vertex work: thread-independent).
void vertex_neighbours(const Mesh& mesh, std::vector<std::size_t>& first, std::vector<int>& list) {
  const std::size_t nv = mesh.vertices.size();
  std::vector<std::size_t> start(nv + 1, 0);
  for (const auto& t : mesh.triangles)
    for (int v : t) start[std::size_t(v) + 1] += 2;
  for (std::size_t v = 0; v < nv; ++v) start[v + 1] += start[v];
  std::vector<int> raw(start[nv]);
  std::vector<std::size_t> fill(start.begin(), start.end() - 1);
  for (const auto& t : mesh.triangles)
    for (int a = 0; a < 3; ++a) {
      const std::size_t v = std::size_t(t[std::size_t(a)]);
      raw[fill[v]++] = t[std::size_t((a + 1) % 3)];
      raw[fill[v]++] = t[std::size_t((a + 2) % 3)];
    }
  std::vector<std::size_t> unique_count(nv, 0);
  parallel_for(std::int64_t(nv), [&](std::int64_t v0, std::int64_t v1) {
    for (std::int64_t v = v0; v < v1; ++v) {
      int* b = raw.data() + start[std::size_t(v)];
      int* e = raw.data() + start[std::size_t(v) + 1];
      std::sort(b, e);
      unique_count[std::size_t(v)] = std::size_t(std::unique(b, e) - b);
    }
  });
  first.assign(nv + 1, 0);
  for (std::size_t v = 0; v < nv; ++v) first[v + 1] = first[v] + unique_count[v];
  list.resize(first[nv]);
  for (std::size_t v = 0; v < nv; ++v)
    std::copy_n(raw.begin() + std::ptrdiff_t(start[v]), unique_count[v], list.begin() + std::ptrdiff_t(first[v]));
}
}  // namespace

void taubin_smooth(Mesh& mesh, int iterations, double lambda, double mu, double max_displacement_mm) {
  if (iterations <= 0 || mesh.vertices.empty()) return;
  std::vector<std::size_t> first;
  std::vector<int> nbrs;
  vertex_neighbours(mesh, first, nbrs);
  const std::vector<Eigen::Vector3d> origin = mesh.vertices;
  std::vector<Eigen::Vector3d> next(mesh.vertices.size());
  const double max2 = max_displacement_mm * max_displacement_mm;
  for (int it = 0; it < 2 * iterations; ++it) {
    const double step = it % 2 == 0 ? lambda : mu;
    parallel_for(std::int64_t(mesh.vertices.size()), [&](std::int64_t v0, std::int64_t v1) {
      for (std::int64_t v = v0; v < v1; ++v) {
        const std::size_t vi = std::size_t(v);
        const Eigen::Vector3d& p = mesh.vertices[vi];
        if (first[vi + 1] == first[vi]) {
          next[vi] = p;
          continue;
        }
        Eigen::Vector3d mean = Eigen::Vector3d::Zero();
        for (std::size_t n = first[vi]; n < first[vi + 1]; ++n) mean += mesh.vertices[std::size_t(nbrs[n])];
        mean /= double(first[vi + 1] - first[vi]);
        Eigen::Vector3d q = p + step * (mean - p);
        if (max_displacement_mm > 0) {
          const Eigen::Vector3d moved = q - origin[vi];
          const double m2 = moved.squaredNorm();
          if (m2 > max2) q = origin[vi] + moved * (max_displacement_mm / std::sqrt(m2));
        }
        next[vi] = q;
      }
    });
    mesh.vertices.swap(next);
  }
}

namespace {
// Each vector made unit length; zero vectors stay zero.
void make_unit(std::vector<Eigen::Vector3d>& vs) {
  for (auto& v : vs) {
    const double len = v.norm();
    v = len > 0 ? Eigen::Vector3d(v / len) : Eigen::Vector3d::Zero();
  }
}
}  // namespace

std::vector<Eigen::Vector3d> vertex_normals(const Mesh& mesh) {
  std::vector<Eigen::Vector3d> n(mesh.vertices.size(), Eigen::Vector3d::Zero());
  for (const auto& t : mesh.triangles) {
    const Eigen::Vector3d& a = mesh.vertices[std::size_t(t[0])];
    const Eigen::Vector3d face = (mesh.vertices[std::size_t(t[1])] - a).cross(mesh.vertices[std::size_t(t[2])] - a);
    for (int v : t) n[std::size_t(v)] += face;
  }
  make_unit(n);
  return n;
}

std::vector<Eigen::Vector3d> smooth_vertex_normals(const Mesh& mesh, std::vector<Eigen::Vector3d> normals,
                                                   double sigma_mm) {
  if (normals.size() != mesh.vertices.size()) throw Error("smooth_vertex_normals: one normal per vertex expected");
  if (sigma_mm <= 0 || mesh.vertices.empty()) return normals;
  std::vector<std::size_t> first;
  std::vector<int> nbrs;
  vertex_neighbours(mesh, first, nbrs);
  // Mean squared edge length: a lazy step (weight 1/2 on the neighbours' mean) spreads a normal
  // by about edge^2 / 4 per axis, so sigma^2 needs 4 sigma^2 / edge^2 steps.
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t v = 0; v < mesh.vertices.size(); ++v)
    for (std::size_t n = first[v]; n < first[v + 1]; ++n, ++count)
      sum += (mesh.vertices[std::size_t(nbrs[n])] - mesh.vertices[v]).squaredNorm();
  if (count == 0) return normals;
  const int steps = std::max(1, int(std::lround(4.0 * sigma_mm * sigma_mm / (sum / double(count)))));
  std::vector<Eigen::Vector3d> next(normals.size());
  for (int it = 0; it < steps; ++it) {
    parallel_for(std::int64_t(normals.size()), [&](std::int64_t v0, std::int64_t v1) {
      for (std::int64_t v = v0; v < v1; ++v) {
        const std::size_t vi = std::size_t(v);
        if (first[vi + 1] == first[vi]) {
          next[vi] = normals[vi];
          continue;
        }
        Eigen::Vector3d mean = Eigen::Vector3d::Zero();
        for (std::size_t n = first[vi]; n < first[vi + 1]; ++n) mean += normals[std::size_t(nbrs[n])];
        next[vi] = 0.5 * normals[vi] + 0.5 * mean / double(first[vi + 1] - first[vi]);
      }
    });
    normals.swap(next);
  }
  make_unit(normals);
  return normals;
}

}  // namespace tmsplan
