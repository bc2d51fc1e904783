#pragma once
/// The cortex-map step (lib/cortexmap, tools/cortex-map): registration, atlases in the subject,
/// surfaces and maps. Declares cortexmap::Params, run, output_names, warp_atlases and map_point.
///
/// Merge note (issue 18): those declarations still sit in the last block of warp.hpp, which is
/// being split in another branch; when that lands, the `tmsplan::cortexmap` block moves here
/// verbatim and this header includes what it needs (files.hpp, provenance.hpp and the header that
/// keeps MniMap / DeformableOptions) instead of warp.hpp.
#include "tmsplan/warp.hpp"
