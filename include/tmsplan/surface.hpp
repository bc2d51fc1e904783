#pragma once
/// Surfaces and cortical maps: triangle meshes of mask boundaries in world RAS mm (scalp, pial,
/// white), their checks (Euler characteristic, closed 2-manifold, self-intersections, distance to
/// the mask boundary), GIfTI output, and the distance maps behind cortex-map (scalp-to-cortex
/// distance, gyral crown / sulcal depth, per-atlas-region summaries). See docs/surfaces.md.
#include <Eigen/Core>

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tmsplan/image.hpp"

namespace tmsplan {

/// A triangle mesh. Triangles index `vertices`; closed meshes made here are oriented so that
/// each triangle is counter-clockwise seen from outside (its right-hand normal points outwards).
struct Mesh {
  std::vector<Eigen::Vector3d> vertices;  ///< world RAS mm
  std::vector<std::array<int, 3>> triangles;
};

struct MeshOptions {
  /// Keep only the largest 6-connected component of the mask before meshing.
  bool keep_largest_component = true;
  /// Fill enclosed background (cavities) so the surface has one sheet.
  bool fill_holes = true;
  /// Also fill handles (tunnels through the object): the background is grown inwards from the
  /// border of the field of view by topology-preserving (simple) voxels only, farthest from the
  /// object first; background voxels it cannot take stay inside. The surface is then a sphere
  /// (Euler characteristic 2). Right for the scalp; not for cortex (it would fill sulci bridges).
  bool genus_zero = false;
  /// Taubin lambda/mu smoothing (one iteration = one lambda and one mu step); 0 turns it off.
  int smoothing_iterations = 25;
  double taubin_lambda = 0.5;
  double taubin_mu = -0.53;
  /// Smoothing moves no vertex farther than this (in voxels of the smallest spacing) from its
  /// marching-cubes position: keeps sheets that are one voxel apart from crossing.
  double max_displacement_vox = 0.6;
};

/// What mesh_from_mask did to the mask and what came out.
struct MeshReport {
  std::size_t mask_voxels = 0;           ///< voxels set in the input
  std::size_t removed_voxels = 0;        ///< dropped with smaller components
  std::size_t filled_hole_voxels = 0;    ///< cavities filled
  std::size_t filled_handle_voxels = 0;  ///< background kept inside to remove handles (and cavities, with genus_zero)
  long euler = 0;                        ///< of the final mesh: V - E + F
  double seconds = 0.0;
};

/// Closed, 2-manifold, consistently outward-oriented triangle mesh of the boundary of `mask`,
/// in world RAS mm through the grid's vox2ras (any storage order, oblique or negative-determinant
/// grids). Marching cubes on the binary mask with one consistent rule for ambiguous faces (object
/// 6-connected, background 26-connected), then Taubin smoothing. Throws Error on an empty mask.
Mesh mesh_from_mask(const Mask& mask, const MeshOptions& options = {}, MeshReport* report = nullptr);

/// The scalp: the head mask's boundary, genus 0 (Euler 2).
Mesh scalp_surface(const Mask& head, MeshReport* report = nullptr);
/// The pial surface: boundary of grey + white matter (brain tissue without CSF), ventricles filled;
/// may keep handles of the tissue segmentation (Euler reported, not forced to 2).
Mesh pial_surface(const Mask& gm, const Mask& wm, MeshReport* report = nullptr);
/// The white surface: boundary of the white matter mask; may keep handles.
Mesh white_surface(const Mask& wm, MeshReport* report = nullptr);

/// Taubin lambda/mu smoothing with uniform (umbrella) weights; shrinks little. Vertices move at
/// most max_displacement_mm from where they started (<= 0: unlimited).
void taubin_smooth(Mesh& mesh, int iterations, double lambda = 0.5, double mu = -0.53,
                   double max_displacement_mm = 0.0);

/// Unit vertex normals (area-weighted face normals); outward for meshes made here.
std::vector<Eigen::Vector3d> vertex_normals(const Mesh& mesh);
/// Normals averaged along the mesh's edges (a diffusion of width about sigma_mm, so the two
/// walls of a sulcus, which share no edges, do not mix), then made unit; sigma_mm <= 0: unchanged.
std::vector<Eigen::Vector3d> smooth_vertex_normals(const Mesh& mesh, std::vector<Eigen::Vector3d> normals,
                                                   double sigma_mm);

/// V - E + F (2 for a sphere, 0 for a torus; 2 per sheet for several closed sheets).
long euler_characteristic(const Mesh& mesh);

/// Edge and vertex topology of a mesh.
struct MeshTopology {
  std::size_t edges = 0;
  std::size_t boundary_edges = 0;        ///< edges with one triangle
  std::size_t nonmanifold_edges = 0;     ///< edges with more than two triangles
  std::size_t misoriented_edges = 0;     ///< edges whose two triangles run the same way along them
  std::size_t nonmanifold_vertices = 0;  ///< triangles around the vertex do not form one fan
  std::size_t unused_vertices = 0;
  std::size_t degenerate_triangles = 0;  ///< repeated vertex index
  std::size_t components = 0;            ///< connected sheets
  bool closed_manifold() const {
    return boundary_edges == 0 && nonmanifold_edges == 0 && misoriented_edges == 0 && nonmanifold_vertices == 0 &&
           unused_vertices == 0 && degenerate_triangles == 0;
  }
};
MeshTopology mesh_topology(const Mesh& mesh);
/// Closed, 2-manifold and consistently oriented (mesh_topology(mesh).closed_manifold()).
bool is_closed_manifold(const Mesh& mesh);

/// Number of pairs of triangles that intersect (pairs sharing an edge are not tested; pairs
/// sharing one vertex only count when they cross away from it). Uniform-grid accelerated;
/// deterministic. Coplanar overlaps are not detected. `pairs`, when given, receives them (i < j).
std::size_t count_self_intersections(const Mesh& mesh, std::vector<std::pair<int, int>>* pairs = nullptr);

/// Signed volume enclosed by a closed mesh (ml); positive when it is oriented outwards.
double enclosed_volume_ml(const Mesh& mesh);

/// How far the vertices lie from the mask boundary: the voxel faces between a voxel in and a voxel
/// out (outside the grid counts as out), searched within two voxels of each vertex (a vertex
/// farther away counts as 2.5 voxels). Exact for orthogonal grids.
struct BoundaryDistance {
  double mean_mm = 0.0;
  double max_mm = 0.0;
  double p95_mm = 0.0;
  double within_1mm = 0.0;  ///< fraction of vertices within 1 mm
};
BoundaryDistance distance_to_mask_boundary(const Mesh& mesh, const Mask& mask);

/// All figures of a surface, for sidecars and reports.
struct MeshSummary {
  std::size_t vertices = 0, triangles = 0;
  long euler = 0;
  bool closed_manifold = false;
  std::size_t components = 0;
  std::size_t self_intersections = 0;
  BoundaryDistance boundary;  ///< only when a mask was given
  double volume_ml = 0.0;
};
MeshSummary summarize(const Mesh& mesh, const Mask* mask = nullptr);

struct GiftiOptions {
  bool force = false;    ///< overwrite an existing file
  bool compress = true;  ///< "GZipBase64Binary" (zlib) rather than "Base64Binary"
  /// Optional AnatomicalStructurePrimary metadata (Workbench names, e.g. "CortexLeft");
  /// omitted when empty.
  std::string structure;
  /// Optional free text stored as "Description" metadata.
  std::string description;
};

/// Writes a GIfTI 1.0 surface (XML): a NIFTI_INTENT_POINTSET float32 array (RAS mm, scanner
/// space, identity CoordinateSystemTransformMatrix) and a NIFTI_INTENT_TRIANGLE int32 array,
/// little endian, atomically. Loads in nibabel, FreeSurfer and Workbench. Same mesh, same bytes.
void write_gifti(const std::string& path, const Mesh& mesh, bool force);
void write_gifti(const std::string& path, const Mesh& mesh, const GiftiOptions& options);
/// Reads the pointset and triangle arrays of a GIfTI surface (ASCII, Base64Binary or
/// GZipBase64Binary; float32/int32; little endian). The coordinate transform is not applied.
Mesh read_gifti(const std::string& path);

/// For each voxel of `cortex`, the shortest Euclidean distance (mm) to the scalp, i.e. to the
/// boundary of `head` (EDT of the head's complement, minus half a voxel: the boundary lies
/// half-way between the last voxel in and the first voxel out); 0 elsewhere. Grids must match.
Image scalp_distance_map(const Mask& head, const Mask& cortex);

/// Gyral crown / sulcal depth: for each voxel of `gm`, the distance (mm) to the brain's outer
/// hull, the boundary of a morphological closing of `brain` with a ball of hull_radius_mm (holes
/// filled). About 0 on gyral crowns, the sulcus depth at sulcal fundi; 0 outside gm.
Image gyral_depth_map(const Mask& brain, const Mask& gm, double hull_radius_mm = 12.0);

/// Statistics of a map over one atlas label.
struct RegionStats {
  int label = 0;
  std::size_t count = 0;                                  ///< voxels with this label (inside `within`, when given)
  double mean = 0.0, min = 0.0, median = 0.0, max = 0.0;  ///< NaN when count is 0
};
/// Per-label statistics of `map` over the voxels of `atlas` with each label in `labels` (every
/// nonzero label present when `labels` is empty), restricted to `within` when given (e.g. the
/// cortex mask, so that a map that is 0 off the cortex does not drag the mean down). Results
/// follow the order of `labels` (ascending when it is empty). Grids must match.
std::vector<RegionStats> region_summary(const Image& map, const Labels& atlas, const std::vector<int>& labels,
                                        const Mask* within = nullptr);
/// The same with an atlas stored as float (labels rounded to the nearest integer).
std::vector<RegionStats> region_summary(const Image& map, const Image& atlas, const std::vector<int>& labels,
                                        const Mask* within = nullptr);

}  // namespace tmsplan
