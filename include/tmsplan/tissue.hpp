#pragma once
/// Tissue classification of a T1 inside a brain mask: CSF, grey matter, white matter.
///
/// A Gaussian intensity mixture fitted by EM, with partial-volume classes (CSF/GM and GM/WM
/// mixtures whose means are blends of the pure classes), a Potts-like Markov random field prior
/// solved by mean-field iterations, and a smooth multiplicative bias field re-estimated inside the
/// EM. Deterministic: the result does not depend on the thread count.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "tmsplan/image.hpp"

namespace tmsplan {
class OutputSet;
class Record;
}  // namespace tmsplan

namespace tmsplan::tissue {

/// Tissue classes in dseg order (label = class + 1).
enum Class { Csf = 0, Gm = 1, Wm = 2 };
inline constexpr int kClasses = 3;
/// Short names, in class order: "csf", "gm", "wm".
const std::array<std::string, kClasses>& class_names();

struct Params {
  int max_iterations = 20;     ///< EM iterations at most (after initialisation)
  int min_iterations = 8;      ///< EM iterations at least
  double tolerance = 1e-3;     ///< stop when no class mean moves by more than this fraction of the WM-CSF contrast
  double mrf_beta = 1.0;       ///< MRF strength per (1 mm) face neighbour; 0 disables the spatial prior
  bool partial_volume = true;  ///< model CSF/GM and GM/WM mixed voxels
  /// class means from all voxels through the linear mixing model (mixed voxels included by their
  /// posterior fractions), not from the pure-class posteriors alone. Off by default: on the
  /// simulated set it fixed the GM/WM volume ratio but cost Dice at low SNR, and Philips WM vs FAST
  /// fell to 0.916 (docs/segment.md).
  bool mixel_means = false;
  /// CSF/WM walls: a voxel between pure CSF and pure WM too close for a grey-matter layer is read as
  /// a CSF/WM mixture where that explains its intensity (docs/segment.md, "CSF/WM walls").
  bool csf_wm_walls = true;
  bool bias_correction = true;  ///< estimate a smooth multiplicative intensity field
  int bias_degree = 3;          ///< degree of the polynomial (in x, y, z) fitted to the log field; -1: none
  double bias_sigma_mm = 0.0;   ///< Gaussian smoothing (mm) of what the polynomial leaves; 0: none
  double bias_cell_mm = 4.0;    ///< cell size of the grid the field is estimated on
  /// edge-preserving pre-filter: intensity scale in noise sds; 0: off. 1 since issue 15 (3 before:
  /// it shifted the GM/WM boundary on noisy simulated heads, docs/segment.md "What was tuned on what").
  double denoise_range = 1.0;
  int denoise_passes = 2;         ///< passes of that filter
  double map_smoothing_mm = 0.6;  ///< Gaussian sigma applied to the tissue maps inside the mask; 0: off
  /// Axes finer than 0.9 x this spacing are worked on at this spacing (mm); the probabilities are
  /// brought back to the input grid (linear) and thresholded there. 0: always the input grid.
  double working_spacing_mm = 1.0;
};

struct Result {
  Labels dseg;                               ///< 0 background, 1 CSF, 2 GM, 3 WM
  std::array<Image, kClasses> probability;   ///< CSF, GM, WM fractions 0..1, summing to 1 in the mask
  Image bias_field;                          ///< multiplicative field (1 outside the mask); t1 / bias is corrected
  std::array<double, kClasses> mean{};       ///< fitted class means (bias-corrected input intensity units)
  std::array<double, kClasses> sd{};         ///< fitted class standard deviations
  std::array<double, kClasses> volume_ml{};  ///< sum of each class's probabilities times voxel volume
  std::array<double, kClasses> label_volume_ml{};  ///< volume of each dseg label
  double noise_sd = 0.0;                           ///< estimated noise (input intensity units)
  int iterations = 0;
  bool converged = false;
};

/// Segments `t1` inside `mask`. Throws Error when the grids differ, the mask is empty or covers the
/// whole volume, or the intensities inside the mask cannot be split into three classes.
Result segment(const Image& t1, const Mask& mask, const Params& params = {});

/// Refuses (Error naming source_name) labels whose layers are in the wrong place for a T1: the
/// mask's outer 3 mm labelled WM more than 0.3 times as often as GM (FLAIR, T2). No verdict when
/// GM and WM fill less than 10 % of that layer.
void check_layer_order(const Labels& dseg, const Mask& mask, const std::string& source_name);

/// The grid segment() works on for an input grid: the input grid itself unless an axis is finer
/// than 0.9 x spacing_mm; then that axis gets spacing_mm (same orientation and extent).
Grid working_grid(const Grid& input, double spacing_mm);

// ---------------------------------------------------------------------------------------------
// The segment step (tools/segment): files in, the contract's outputs and record out.

struct RunParams {
  std::string t1;    ///< T1-weighted image (NIfTI or DICOM folder), bias-corrected or not
  std::string mask;  ///< brain mask on the T1's grid (> 0.5 inside)
  Params model;
};

/// Output roles (OutputSet) that run() writes, with their contract file names (DESIGN.md 8):
/// dseg, probseg_csf|gm|wm, qc, record.
std::vector<std::pair<std::string, std::string>> output_names();

/// Runs the whole step: reads and checks the inputs, segments, writes every output of `out`
/// (registered with output_names() and checked by the caller) except the record, and fills the
/// record's inputs, outputs, parameters and figures. A failure leaves no output (the tool runner
/// rolls back what was committed).
void run(const RunParams& params, const OutputSet& out, Record& record);

}  // namespace tmsplan::tissue
